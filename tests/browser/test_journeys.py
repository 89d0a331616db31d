"""The portal in a real browser (Debian's Chromium through Playwright) against the real
stack: Keycloak, the broker, PostgreSQL, the four services and the portal as processes.
Each journey is a person's; axe-core runs on every page it shows, and each main page is
photographed at 360 px and 1280 px under var/screenshots/."""
from __future__ import annotations

import re
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.sync_api import Page, expect

from tests.browser import api
from tests.browser.kit import Auditor, sign_in, snap, verification_link
from tests.e2e.stack import Stack, eventually
from tests.unit.registration_helpers import nik

WAIT = api.EVENT_WAIT
# NIK serials of this run's businesses (a stack left up between runs keeps older ones).
SERIAL = 1000 + secrets.randbelow(8000)


def stat(page: Page, name: str) -> int:
    return int(re.sub(r"\D", "", page.locator(f'[data-stat="{name}"]').inner_text()) or 0)


def sign_up(page: Page, portal: str, keycloak: Any) -> str:
    """A new person: the portal's "Daftar akun" -> the identity provider's sign-up form ->
    the verification mail's link -> back in the portal, signed in as an owner."""
    address = f"pemilik-{uuid.uuid4().hex[:8]}@bbi.test"
    page.goto(portal + "/")
    page.get_by_role("link", name="Daftar akun").first.click()
    before = session_cookie(page)  # the anonymous session that holds the OIDC state
    page.locator("#email").fill(address)
    for field, value in (("#firstName", "Ayu"), ("#lastName", "Lestari")):
        if page.locator(field).count():
            page.locator(field).fill(value)
    page.locator("#password").fill("Rahasia-Ayu-2026")
    page.locator("#password-confirm").fill("Rahasia-Ayu-2026")
    page.locator("input[type=submit], button[type=submit]").first.click()
    page.goto(verification_link(keycloak.mail_dir, address))
    proceed = page.get_by_role("link", name=re.compile("lanjut|proceed|klik|click", re.I))
    if not page.url.startswith(portal) and proceed.count():
        proceed.first.click()
    page.wait_for_url(f"{portal}/**")
    expect(page.get_by_role("link", name="Usaha saya")).to_be_visible()
    after = session_cookie(page)
    # A new session id at sign-in (no fixation); the cookie is out of scripts' reach.
    assert before and after and after["value"] != before["value"]
    assert after["httpOnly"] and after["sameSite"] == "Lax"
    return address


def session_cookie(page: Page) -> dict[str, Any] | None:
    found = [c for c in page.context.cookies() if c["name"] == "bbi_portal"]
    return dict(found[0]) if found else None


def fill_registration(page: Page, nik_value: str, nib: str) -> None:
    page.get_by_label("Nama usaha").fill("Kopi Lestari")
    page.locator("#f-nib").fill(nib)
    page.locator("#f-kbli_code").fill("10792")
    page.locator("#f-capital_idr").fill("Rp 25.000.000")
    page.locator("#f-owner_name").fill("Ayu Lestari")
    page.locator("#f-nik").fill(nik_value)
    page.locator("#f-phone").fill("0812 3456 7890")
    page.locator("#f-province_code").select_option("31")
    page.locator("#f-regency_code").fill("3171")
    page.locator("#f-address").fill("Jl. Kenanga No. 5")
    page.locator("#f-postal_code").fill("12130")
    page.get_by_label("Shopee", exact=True).check()
    page.get_by_label("Ya", exact=True).check()
    page.locator("#f-consent_given").check()


def test_owner_signs_up_registers_is_verified_and_the_home_page_moves(
        stack: Stack, portal: str, keycloak: Any, new_page: Any, auditor: Auditor) -> None:
    home = new_page(1280)
    home.goto(portal + "/")
    registered_before = stat(home, "registered")
    snap(home, auditor, "home")

    page = new_page()
    sign_up(page, portal, keycloak)
    page.goto(portal + "/usaha-saya")
    expect(page.get_by_text("Belum ada usaha")).to_be_visible()
    snap(page, auditor, "my-businesses-empty")

    # A wrong NIK: the API's field error is shown next to the NIK field, in Indonesian.
    page.goto(portal + "/usaha/daftar")
    snap(page, auditor, "register")
    nib = f"91{uuid.uuid4().int % 10**11:011d}"
    fill_registration(page, "3171011708450000", nib)  # serial 0000 is never issued
    page.get_by_role("button", name="Kirim pendaftaran").click()
    nik_error = page.locator('[data-field="nik"] .error')
    expect(nik_error).to_be_visible()
    expect(page.locator("#f-nik")).to_have_attribute("aria-invalid", "true")
    expect(page.locator('[data-field="business_name"] .error')).to_have_count(0)
    expect(page.locator("#f-business_name")).to_have_value("Kopi Lestari")
    snap(page, auditor, "register-field-error")
    # Correcting the field clears its error at once; the API then accepts the form.
    page.locator("#f-nik").fill(nik(SERIAL))
    expect(nik_error).to_have_count(0)
    page.get_by_role("button", name="Kirim pendaftaran").click()
    page.wait_for_url(f"{portal}/usaha-saya*")
    card = page.locator("article.business").first
    expect(card).to_have_attribute("data-status", "registered")
    umkm_id = (card.get_attribute("id") or "").removeprefix("usaha-")
    snap(page, auditor, "my-businesses")

    # An operator verifies it from the queue; the owner's timeline shows it.
    op = new_page(1280)
    sign_in(op, portal, "operator1@bbi.test", "/operator")
    snap(op, auditor, "operator-queue")
    queued = op.locator(f'[data-umkm="{umkm_id}"]')
    queued.get_by_role("button", name=re.compile("Verifikasi")).click()
    expect(op.get_by_text("Usaha diverifikasi.")).to_be_visible()
    page.reload()
    expect(page.locator(f"#usaha-{umkm_id}")).to_have_attribute("data-status", "verified")
    expect(page.locator(f"#usaha-{umkm_id} .timeline li.done")).to_have_count(2)

    # The national figures on the home page move once the metrics service has the events.
    def moved() -> None:
        home.reload()
        assert stat(home, "registered") == registered_before + 1
        assert stat(home, "verified") >= 1
    eventually(moved, timeout=WAIT, every=1.0)

    # Withdrawal says what is erased, and asks to confirm.
    page.goto(f"{portal}/usaha/{umkm_id}/tarik")
    expect(page.get_by_role("heading", name="Yang akan dihapus")).to_be_visible()
    snap(page, auditor, "withdraw-confirm")
    page.get_by_label(re.compile("Saya paham")).check()
    page.get_by_role("button", name="Tarik dan hapus data").click()
    expect(page.get_by_text("Data pribadi Kopi Lestari telah dihapus.")).to_be_visible()
    expect(page.locator(f"#usaha-{umkm_id}")).to_have_count(0)

    # Sign-out ends the identity provider's session too: the next sign-in asks again.
    page.get_by_role("button", name="Keluar").click()
    page.wait_for_url(f"{portal}/")
    page.goto(portal + "/usaha-saya")
    expect(page.locator("#username")).to_be_visible()


def test_full_webinar_waitlist_and_promotion(stack: Stack, portal: str, keycloak: Any,
                                             new_page: Any, auditor: Auditor) -> None:
    operator = api.bearer(keycloak, "operator1@bbi.test")
    setup = api.webinar(stack, operator, capacity=1)
    session_id = setup["session"]["id"]
    owners = {}
    for n, who in ((SERIAL + 1, "owner1@bbi.test"), (SERIAL + 2, "owner2@bbi.test")):
        token = api.bearer(keycloak, who)
        owners[who] = api.register(stack, token, n)
        api.training_knows(stack, token, owners[who]["id"])

    first, second = new_page(), new_page()
    sign_in(first, portal, "owner1@bbi.test",
            f"/pelatihan?usaha={owners['owner1@bbi.test']['id']}")
    card = first.locator(f"#w-{session_id}")
    expect(card.locator(".seats")).to_contain_text("1")
    snap(first, auditor, "training-catalogue")
    card.get_by_role("button", name="Daftar").click()
    expect(first.locator(f"#w-{session_id} [data-state]")).to_have_attribute("data-state",
                                                                            "enrolled")

    sign_in(second, portal, "owner2@bbi.test",
            f"/pelatihan?usaha={owners['owner2@bbi.test']['id']}")
    card = second.locator(f"#w-{session_id}")
    expect(card.locator(".seats")).to_contain_text("Penuh")
    card.get_by_role("button", name="Masuk daftar tunggu").click()
    badge = second.locator(f"#w-{session_id} [data-state]")
    expect(badge).to_have_attribute("data-state", "waitlisted")
    expect(badge.locator("[data-position]")).to_have_text("1")
    snap(second, auditor, "training-waitlisted")

    first.locator(f"#w-{session_id}").get_by_role("button", name="Batalkan").click()
    expect(first.get_by_text(re.compile("Pendaftaran dibatalkan"))).to_be_visible()
    second.reload()
    expect(second.locator(f"#w-{session_id} [data-state]")).to_have_attribute("data-state",
                                                                             "enrolled")
    second.goto(portal + "/pelatihan/sertifikat")
    expect(second.get_by_text(re.compile("Belum ada pelatihan yang selesai"))).to_be_visible()
    snap(second, auditor, "training-completions-empty")

    # Self-paced: the last module done issues a certificate, printable from "my certificates".
    course = first.locator(f"#c-{setup['course']['id']}")
    for title in ("Foto produk", "Menentukan harga"):
        course.get_by_role("button", name=re.compile(f"Tandai selesai.*{title}")).click()
        expect(course.locator("[data-module] .badge")).not_to_have_count(0)
    expect(course.locator("[data-module] .badge")).to_have_count(2)
    first.goto(portal + "/pelatihan/sertifikat")
    row = first.locator("table tbody tr")
    expect(row).to_have_count(1)
    snap(first, auditor, "training-completions")
    row.get_by_role("link").click()
    expect(first.get_by_role("heading", name="Sertifikat Pelatihan")).to_be_visible()
    expect(first.locator(".cert-name")).to_have_text(owners["owner1@bbi.test"]["business_name"])
    snap(first, auditor, "certificate")
    # The number on it can be checked at a public URL, signed in or not.
    number = first.locator(".cert-number strong").inner_text()
    public = new_page()
    public.goto(f"{portal}/cek-sertifikat?nomor={number}")
    valid = public.locator('[data-certificate="valid"]')
    expect(valid.get_by_role("heading")).to_have_text("Sertifikat sah")
    expect(valid.locator('[data-field="number"]')).to_have_text(number)
    expect(valid.locator('[data-field="course"]')).to_have_text(setup["course"]["title"])
    expect(valid.locator('[data-field="kind"]')).to_have_text("Belajar mandiri (e-learning)")
    expect(valid.locator('[data-field="business"]')).to_have_text(
        owners["owner1@bbi.test"]["business_name"])
    snap(public, auditor, "certificate-check")
    # A number nobody was given, typed into the same form: clearly not found.
    public.get_by_label("Nomor sertifikat").fill(number[:-1] + ("0" if number[-1] != "0" else "1"))
    public.get_by_role("button", name="Cek").click()
    expect(public.locator('[data-certificate="not-found"] h2')).to_have_text(
        "Sertifikat tidak ditemukan")
    expect(public.locator('[data-certificate="valid"]')).to_have_count(0)
    snap(public, auditor, "certificate-check-not-found")



def test_official_records_a_purchase_and_sees_it_in_the_totals(
        stack: Stack, portal: str, keycloak: Any, new_page: Any, auditor: Auditor) -> None:
    operator = api.bearer(keycloak, "operator1@bbi.test")
    owner = api.bearer(keycloak, "owner1@bbi.test")
    seller = api.register(stack, owner, SERIAL + 3, business_name="Batik Sekar Jagad")
    api.verify_and_onboard(stack, operator, seller["id"])
    code = api.open_campaign(stack, operator)
    api.campaign_knows(stack, api.bearer(keycloak, "official1@bbi.test"), code, seller["nib"])

    # The operator's curation queue: reject with a reason; the owner reads it.
    op = new_page(1280)
    sign_in(op, portal, "operator1@bbi.test", "/operator")
    item = op.locator(f'[data-umkm="{seller["id"]}"]').filter(has=op.get_by_label(
        "Alasan penolakan"))
    item.get_by_label("Alasan penolakan").fill("Foto produk belum jelas")
    item.get_by_role("button", name=re.compile("Tolak")).click()
    expect(op.get_by_text("Keputusan kurasi tersimpan.")).to_be_visible()
    # A regional operator (province scope 32, Jawa Barat) sees only that province.
    regional = new_page()
    sign_in(regional, portal, "operator-jabar@bbi.test", "/operator/cari")
    expect(regional.get_by_text(re.compile("dibatasi ke provinsi"))).to_be_visible()
    expect(regional.locator(f'[data-umkm="{seller["id"]}"]')).to_have_count(0)
    op.goto(portal + "/operator/cari?status=onboarded")
    expect(op.locator(f'[data-umkm="{seller["id"]}"]')).to_be_visible()
    snap(op, auditor, "operator-search")
    with op.expect_download() as got:
        op.get_by_role("link", name="Ekspor CSV").click()
    assert seller["nib"] in got.value.path().read_text()

    page = new_page()
    sign_in(page, portal, "official1@bbi.test", "/pejabat")
    offer = page.locator(f'[data-code="{code}"]')
    expect(offer).to_be_visible()
    snap(page, auditor, "official-campaigns")
    offer.get_by_role("button", name="Ikut").click()
    page.wait_for_url(f"{portal}/pejabat/{code}")
    participants = stat(page, "participants")
    assert participants >= 1

    # By name and province (the directory over the campaign's read model) ...
    page.get_by_label("Nama usaha").fill("sekar jagad")
    page.get_by_label("Provinsi").select_option("31")
    page.get_by_role("button", name="Cari dengan nama").click()
    expect(page.locator(f'[data-seller="{seller["nib"]}"]')).to_be_visible()
    # ... or by the NIB on the invoice.
    page.get_by_label("NIB").fill(seller["nib"])
    page.get_by_role("button", name="Cari dengan NIB").click()
    result = page.locator(f'[data-seller="{seller["nib"]}"]')
    expect(result).to_contain_text("Batik Sekar Jagad")
    snap(page, auditor, "official-find-seller")
    result.get_by_role("link", name=re.compile("Catat pembelian")).click()

    # Half an hour ago on the official's clock (WIB: UTC+7), whatever the browser's zone.
    wib = datetime.now(UTC) + timedelta(hours=7) - timedelta(minutes=30)
    page.get_by_label("Jumlah (Rp)").fill("150.000")
    page.get_by_label("Platform").select_option("shopee")
    page.get_by_label("Nomor pesanan").fill(f"INV-{uuid.uuid4().hex[:6]}")
    page.get_by_label("Tanggal").fill(wib.strftime("%Y-%m-%d"))
    page.get_by_label("Jam").fill(wib.strftime("%H:%M"))
    page.get_by_label("Zona").select_option("WIB")
    snap(page, auditor, "official-purchase-form")
    page.get_by_role("button", name="Simpan pembelian").click()
    expect(page.locator("[data-amount]")).to_have_text("Rp150.000")
    expect(page.get_by_text(wib.strftime("%H.%M") + " WIB")).to_be_visible()
    snap(page, auditor, "official-receipt")

    page.goto(f"{portal}/pejabat/{code}/pembelian")
    expect(page.get_by_role("cell", name="Rp150.000")).to_be_visible()
    snap(page, auditor, "official-my-purchases")
    page.goto(f"{portal}/pejabat/{code}")
    expect(page.locator('[data-stat="purchases"]')).to_have_text("1")
    expect(page.locator('[data-stat="amount_idr"]')).to_have_text("Rp150.000")

    mine = new_page()
    sign_in(mine, portal, "owner1@bbi.test", "/usaha-saya")
    expect(mine.locator(f"#usaha-{seller['id']} .reason")).to_contain_text(
        "Foto produk belum jelas")
    snap(mine, auditor, "my-businesses-timeline")


def test_error_pages_and_english(portal: str, new_page: Any, auditor: Auditor) -> None:
    page = new_page()
    resp = page.goto(portal + "/tidak-ada-halaman")
    assert resp is not None and resp.status == 404
    expect(page.get_by_role("heading", name="Halaman tidak ditemukan")).to_be_visible()
    snap(page, auditor, "error-404")
    page.goto(portal + "/")
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", name="National progress")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    snap(page, auditor, "home-english")


def test_while_the_pipeline_is_down_writes_are_accepted_and_the_lag_is_shown(
        stack: Stack, portal: str, keycloak: Any, new_page: Any, auditor: Auditor) -> None:
    """Registration's relay stopped (as when Kafka is down): the portal still registers the
    business, and the training page says it has not caught up yet; once the relay is back
    the notice goes."""
    stack.terminate("registration_worker")
    page = new_page()
    try:
        sign_in(page, portal, "owner2@bbi.test", "/usaha/daftar")
        fill_registration(page, nik(SERIAL + 4), f"92{uuid.uuid4().int % 10**11:011d}")
        page.locator("#f-business_name").fill("Tenun Ikat Sumba")
        page.get_by_role("button", name="Kirim pendaftaran").click()
        page.wait_for_url(f"{portal}/usaha-saya*")
        card = page.locator("article.business", has_text="Tenun Ikat Sumba")
        expect(card).to_have_attribute("data-status", "registered")
        umkm_id = (card.get_attribute("id") or "").removeprefix("usaha-")
        page.goto(f"{portal}/pelatihan?usaha={umkm_id}")
        lag = page.get_by_text(re.compile("sedang diproses layanan pelatihan"))
        expect(lag).to_be_visible()
        # Nothing to click that would fail: enrolment waits until training knows it.
        expect(page.locator(".webinar form, .modules form")).to_have_count(0)
        snap(page, auditor, "training-lagging")
    finally:
        stack.start_worker("registration")

    def caught_up() -> None:
        page.reload()
        assert lag.count() == 0 and page.locator(".webinar form").count() >= 1
    eventually(caught_up, timeout=WAIT, every=1.0)
