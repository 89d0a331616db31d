"""Reference data shared by every service: provinces, KBLI sections, platforms, scales, targets."""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Final

# Kept as CSV package data (services/common/reference/*.csv) so the facts stay reviewable as
# data and ship inside the wheel; read once, on first use, never at import.
_DATA_DIR: Final = "reference"


def _read_csv(name: str) -> list[dict[str, str]]:
    """Rows of one packaged CSV file as dicts keyed by its header."""
    text = resources.files("services.common").joinpath(_DATA_DIR, name).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


@functools.cache
def _provinces() -> Mapping[str, str]:
    # Read-only view: the cached object is shared by every caller in the process.
    return MappingProxyType({r["kemendagri_code"]: r["name"] for r in _read_csv("provinces.csv")})


def provinces() -> dict[str, str]:
    """The 38 provinces: two-digit Kemendagri code (as NIKs use) -> name."""
    # A fresh dict so a caller that mutates it cannot corrupt the cached table.
    return dict(_provinces())


def province_name(code: str) -> str | None:
    """Name of the province with this Kemendagri code, or None if there is none."""
    return _provinces().get(code)


@functools.cache
def _province_zones() -> Mapping[str, str]:
    return MappingProxyType({r["kemendagri_code"]: r["time_zone"]
                             for r in _read_csv("provinces.csv")})


def province_zone(code: str) -> str | None:
    """The province's legal time zone (Keppres 41/1987): "WIB", "WITA" or "WIT"; else None."""
    return _province_zones().get(code)


# KBLI 2020 (Peraturan BPS 2/2020) section titles.
KBLI_SECTIONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "A": "Pertanian, Kehutanan dan Perikanan",
        "B": "Pertambangan dan Penggalian",
        "C": "Industri Pengolahan",
        "D": "Pengadaan Listrik, Gas, Uap/Air Panas dan Udara Dingin",
        "E": "Treatment Air, Treatment Air Limbah, Treatment dan Pemulihan Material Sampah, "
        "dan Aktivitas Remediasi",
        "F": "Konstruksi",
        "G": "Perdagangan Besar dan Eceran; Reparasi dan Perawatan Mobil dan Sepeda Motor",
        "H": "Pengangkutan dan Pergudangan",
        "I": "Penyediaan Akomodasi dan Penyediaan Makan Minum",
        "J": "Informasi dan Komunikasi",
        "K": "Aktivitas Keuangan dan Asuransi",
        "L": "Real Estat",
        "M": "Aktivitas Profesional, Ilmiah dan Teknis",
        "N": "Aktivitas Penyewaan dan Sewa Guna Usaha Tanpa Hak Opsi, Ketenagakerjaan, "
        "Agen Perjalanan dan Penunjang Usaha Lainnya",
        "O": "Administrasi Pemerintahan, Pertahanan dan Jaminan Sosial Wajib",
        "P": "Pendidikan",
        "Q": "Aktivitas Kesehatan Manusia dan Aktivitas Sosial",
        "R": "Kesenian, Hiburan dan Rekreasi",
        "S": "Aktivitas Jasa Lainnya",
        "T": "Aktivitas Rumah Tangga sebagai Pemberi Kerja; Aktivitas yang Menghasilkan Barang "
        "dan Jasa oleh Rumah Tangga yang Digunakan untuk Memenuhi Kebutuhan Sendiri",
        "U": "Aktivitas Badan Internasional dan Badan Ekstra Internasional Lainnya",
    }
)

# Inclusive 2-digit division ranges per section (DESIGN §4). The gaps (00, 04, 34, 40, 44,
# 48, 54, 57, 67, 76, 83, 89) are unused in KBLI 2020 and therefore invalid.
_KBLI_DIVISIONS: Final[tuple[tuple[int, int, str], ...]] = (
    (1, 3, "A"), (5, 9, "B"), (10, 33, "C"), (35, 35, "D"), (36, 39, "E"), (41, 43, "F"),
    (45, 47, "G"), (49, 53, "H"), (55, 56, "I"), (58, 63, "J"), (64, 66, "K"), (68, 68, "L"),
    (69, 75, "M"), (77, 82, "N"), (84, 84, "O"), (85, 85, "P"), (86, 88, "Q"), (90, 93, "R"),
    (94, 96, "S"), (97, 98, "T"), (99, 99, "U"),
)  # fmt: skip


def kbli_section(code: str) -> str | None:
    """Section letter (A-U) of a KBLI code from its 2-digit division, or None if invalid."""
    # Only the division decides the section, so a 2-digit division or a full 5-digit code works.
    if len(code) < 2 or not code[:2].isascii() or not code[:2].isdigit():
        return None
    division = int(code[:2])
    for low, high, section in _KBLI_DIVISIONS:
        if low <= division <= high:
            return section
    return None


@dataclass(frozen=True, slots=True)
class Platform:
    """A digital platform an UMKM can be onboarded to."""

    code: str
    name: str
    category: str


PLATFORM_CATEGORIES: Final = ("marketplace", "food_delivery", "social_commerce", "government")

# Payment channels (QRIS, e-wallets) are deliberately absent: they are not sales platforms.
PLATFORMS: Final[Mapping[str, Platform]] = MappingProxyType(
    {
        p.code: p
        for p in (
            Platform("tokopedia", "Tokopedia", "marketplace"),
            Platform("shopee", "Shopee", "marketplace"),
            Platform("bukalapak", "Bukalapak", "marketplace"),
            Platform("lazada", "Lazada", "marketplace"),
            Platform("blibli", "Blibli", "marketplace"),
            Platform("tiktok_shop", "TikTok Shop", "marketplace"),
            Platform("gofood", "GoFood", "food_delivery"),
            Platform("grabfood", "GrabFood", "food_delivery"),
            Platform("shopeefood", "ShopeeFood", "food_delivery"),
            Platform("whatsapp_business", "WhatsApp Business", "social_commerce"),
            Platform("instagram", "Instagram", "social_commerce"),
            Platform("facebook", "Facebook", "social_commerce"),
            Platform("lkpp_ekatalog", "e-Katalog LKPP", "government"),
            Platform("padi_umkm", "PaDi UMKM", "government"),
            Platform("bela_pengadaan", "Bela Pengadaan", "government"),
        )
    }
)

# Ordered smallest first, as PP 7/2021 lists them.
SCALES: Final = ("mikro", "kecil", "menengah")


@dataclass(frozen=True, slots=True)
class Target:
    """A national target, with the seed article it comes from."""

    metric: str
    year: int
    value: int
    source_seed: str
    note: str | None


@functools.cache
def _targets() -> tuple[Target, ...]:
    return tuple(
        Target(
            metric=r["metric"],
            year=int(r["year"]),
            value=int(r["value"]),
            source_seed=r["source_seed"],
            note=r["note"] or None,
        )
        for r in _read_csv("targets.csv")
    )


def targets() -> list[Target]:
    """Every national target in file order (a metric/year may appear twice; see its note)."""
    return list(_targets())
