"""Reference data: provinces, KBLI sections, platforms, scales and targets."""

import dataclasses

import pytest

from services.common import reference
from services.common.reference import (
    KBLI_SECTIONS,
    PLATFORM_CATEGORIES,
    PLATFORMS,
    SCALES,
    Target,
    kbli_section,
    province_name,
    provinces,
    targets,
)

KEMENDAGRI_CODES = {
    "11", "12", "13", "14", "15", "16", "17", "18", "19", "21",
    "31", "32", "33", "34", "35", "36",
    "51", "52", "53",
    "61", "62", "63", "64", "65",
    "71", "72", "73", "74", "75", "76",
    "81", "82",
    "91", "92", "93", "94", "95", "96",
}  # fmt: skip


def test_all_38_provinces_are_loaded_with_kemendagri_codes():
    assert len(provinces()) == 38
    assert set(provinces()) == KEMENDAGRI_CODES
    assert all(name.strip() == name and name for name in provinces().values())


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("11", "Aceh"),
        ("31", "DKI Jakarta"),
        ("65", "Kalimantan Utara"),  # missing from python-stdnum's table
        ("91", "Papua"),
        ("92", "Papua Barat"),
        ("93", "Papua Selatan"),
        ("94", "Papua Tengah"),
        ("95", "Papua Pegunungan"),
        ("96", "Papua Barat Daya"),
    ],
)
def test_province_name(code, name):
    assert province_name(code) == name


@pytest.mark.parametrize("code", ["00", "10", "20", "37", "66", "90", "97", "99", "", "3", "031"])
def test_unknown_province_has_no_name(code):
    assert province_name(code) is None


def test_provinces_returns_a_copy_that_cannot_corrupt_the_table():
    copy = provinces()
    copy["99"] = "Nowhere"
    del copy["11"]
    assert province_name("99") is None
    assert province_name("11") == "Aceh"


def test_data_is_read_once():
    assert reference._provinces() is reference._provinces()
    assert reference._targets() is reference._targets()


def test_kbli_has_the_21_sections_a_to_u():
    assert list(KBLI_SECTIONS) == [chr(c) for c in range(ord("A"), ord("U") + 1)]
    assert KBLI_SECTIONS["C"] == "Industri Pengolahan"
    assert KBLI_SECTIONS["G"].startswith("Perdagangan Besar dan Eceran")


# The DESIGN §4 table, written out independently of the implementation.
SECTION_RANGES = {
    "A": (1, 3), "B": (5, 9), "C": (10, 33), "D": (35, 35), "E": (36, 39), "F": (41, 43),
    "G": (45, 47), "H": (49, 53), "I": (55, 56), "J": (58, 63), "K": (64, 66), "L": (68, 68),
    "M": (69, 75), "N": (77, 82), "O": (84, 84), "P": (85, 85), "Q": (86, 88), "R": (90, 93),
    "S": (94, 96), "T": (97, 98), "U": (99, 99),
}  # fmt: skip


def _expected_section(division: int) -> str | None:
    for section, (low, high) in SECTION_RANGES.items():
        if low <= division <= high:
            return section
    return None


@pytest.mark.parametrize("division", range(100))
def test_every_division_maps_to_its_section(division):
    assert kbli_section(f"{division:02d}111") == _expected_section(division)


@pytest.mark.parametrize(
    ("code", "section"),
    [
        ("00111", None),
        ("01111", "A"),
        ("03111", "A"),
        ("04111", None),
        ("05100", "B"),
        ("09900", "B"),
        ("10110", "C"),
        ("33121", "C"),
        ("34000", None),
        ("35101", "D"),
        ("36000", "E"),
        ("39000", "E"),
        ("40000", None),
        ("41011", "F"),
        ("44000", None),
        ("47111", "G"),
        ("48000", None),
        ("54000", None),
        ("56101", "I"),
        ("57000", None),
        ("67000", None),
        ("68111", "L"),
        ("76000", None),
        ("83000", None),
        ("84111", "O"),
        ("85000", "P"),
        ("89000", None),
        ("98000", "T"),
        ("99000", "U"),
    ],
)
def test_kbli_section_boundaries(code, section):
    assert kbli_section(code) == section


@pytest.mark.parametrize("code", ["", "4", "a7111", "4a111", "\u0664\u0667111", " 47111"])
def test_kbli_section_of_non_numeric_division_is_none(code):
    assert kbli_section(code) is None


def test_kbli_section_accepts_a_bare_division():
    assert kbli_section("47") == "G"


def test_platforms_are_the_fixed_set_with_categories():
    assert dict((code, p.category) for code, p in PLATFORMS.items()) == {
        "tokopedia": "marketplace",
        "shopee": "marketplace",
        "bukalapak": "marketplace",
        "lazada": "marketplace",
        "blibli": "marketplace",
        "tiktok_shop": "marketplace",
        "gofood": "food_delivery",
        "grabfood": "food_delivery",
        "shopeefood": "food_delivery",
        "whatsapp_business": "social_commerce",
        "instagram": "social_commerce",
        "facebook": "social_commerce",
        "lkpp_ekatalog": "government",
        "padi_umkm": "government",
        "bela_pengadaan": "government",
    }
    assert all(p.code == code and p.name for code, p in PLATFORMS.items())
    assert {p.category for p in PLATFORMS.values()} == set(PLATFORM_CATEGORIES)


@pytest.mark.parametrize("payment", ["qris", "gopay", "ovo", "dana", "shopeepay", "linkaja"])
def test_payments_are_not_platforms(payment):
    assert payment not in PLATFORMS


def test_platforms_are_read_only():
    with pytest.raises(TypeError):
        PLATFORMS["new"] = PLATFORMS["shopee"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        PLATFORMS["shopee"].name = "x"  # type: ignore[misc]


def test_scales_smallest_first():
    assert SCALES == ("mikro", "kecil", "menengah")


def test_targets_are_typed_rows_in_file_order():
    rows = targets()
    assert len(rows) == 11
    assert all(isinstance(t, Target) for t in rows)
    assert all(isinstance(t.year, int) and isinstance(t.value, int) for t in rows)
    assert all(t.source_seed.endswith(".txt") for t in rows)
    assert rows[0] == Target(
        "umkm_onboarded_new",
        2020,
        2_000_000,
        "004_fd96eacd5e4141cd.txt",
        "GBBI target: 2 million UMKM moved into the digital ecosystem by December 2020",
    )


def test_design_targets_are_present():
    got = {(t.metric, t.year, t.value) for t in targets()}
    assert {
        ("umkm_onboarded_new", 2020, 2_000_000),
        ("umkm_onboarded_total", 2022, 20_000_000),
        ("umkm_onboarded_total", 2023, 24_000_000),
        ("umkm_onboarded_total", 2024, 30_000_000),
        ("umkm_ekatalog_onboarded", 2022, 1_000_000),
    } <= got


def test_empty_target_note_is_none():
    notes = {(t.metric, t.year): t.note for t in targets()}
    assert notes[("koperasi_modern_total", 2023)] is None
    assert notes[("koperasi_modern_total", 2022)] == "modern digital cooperatives"


def test_targets_returns_a_fresh_list():
    targets().clear()
    assert len(targets()) == 11
