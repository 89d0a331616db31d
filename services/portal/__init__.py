"""The portal: server-rendered pages for the public, officials and operators (a
backend-for-frontend over the four services' public APIs)."""
