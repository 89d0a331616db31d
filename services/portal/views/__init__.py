"""One blueprint per audience: the public (owners), training, officials, operators."""
