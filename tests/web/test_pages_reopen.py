"""The item page after a decision: a dismissed item can be reopened (staff and admins, with the
form's CSRF token, audited), a refused reopening says why on the page, and a resolve names the
other items of the same PACS patient it resolved too. Through TestClient: a browser adds
nothing to these forms; the browser flow is test_pages_review.py."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date

import pytest
from fastapi.testclient import TestClient
from pages_testkit import CLOSED_PACS, closed_pacs_settings

from gateway.app import create_app
from gateway.core.keys import ROLES
from gateway.fetch.plan import found_by_name
from gateway.review import ReviewItem, ReviewOrigin, ReviewState
from gateway.service import Gateway
from pacs.models import PacsPatient, PersonName, Study

PACS_NAME = CLOSED_PACS
UID = "1.2.826.0.1.3680043.8.498.7"
CHIDI = 1005  # one of the twins in the demo practice: never linked automatically


@dataclass(frozen=True)
class Outside:
    """One of the twins under an outside provider's id, as C-FIND answers."""

    patient_id: str = "X-55501"
    issuer: str = "NORTHSIDE-RADIOLOGY"

    def patient(self) -> PacsPatient:
        return PacsPatient(
            self.patient_id,
            PersonName.parse("Okafor^Chidi"),
            date(2012, 5, 9),
            "M",
            issuer_of_patient_id=self.issuer,
        )


@pytest.fixture
def gateway(tmp_path) -> Gateway:
    return Gateway(closed_pacs_settings(tmp_path))  # the follow-up fetch stays queued


@pytest.fixture
def client(gateway) -> Iterator[TestClient]:
    with TestClient(
        create_app(gateway), raise_server_exceptions=False, follow_redirects=False
    ) as c:
        yield c


@pytest.fixture
def keys(client) -> dict[str, str]:
    return {role: client.app.state.keys.create(f"pages-{role}", role)[1] for role in ROLES}


@pytest.fixture
def queue(gateway) -> Callable[..., ReviewItem]:
    """`queue(n, origin=..., patient=Outside())`: study UID.n of the patient, queued as a
    name-query hit."""

    def add(
        n: int, origin: ReviewOrigin = ReviewOrigin.NAME_QUERY, patient: Outside = Outside()
    ) -> ReviewItem:
        pacs = patient.patient()
        decision = found_by_name(gateway.patients.matcher().match(pacs))
        study = Study(
            f"{UID}.{n}",
            pacs,
            study_date=date(2024, 8, n),
            description=f"Panoramic {n}",
            modalities=("PX",),
            number_of_instances=1,
        )
        item, created = gateway.review.add(
            origin=origin,
            pacs_name=PACS_NAME,
            patient=pacs,
            study=study,
            decision=decision,
            details=gateway.patients.details([c.r4_patient_id for c in decision.candidates]),
        )
        assert created
        return item

    return add


def login(client: TestClient, key: str) -> None:
    token = csrf(client, "/ui/login")
    answer = client.post("/ui/login", data={"csrf_token": token, "api_key": key})
    assert answer.status_code == 303, answer.text


def csrf(client: TestClient, path: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)[1]


def post(client: TestClient, path: str, **data: str):
    """A form on the pages, as the browser sends it: with the session's CSRF token."""
    return client.post(path, data={"csrf_token": csrf(client, "/ui/review"), **data})


def alert(html: str) -> str:
    found = re.search(r'<p class="error-text" role="alert">(.*?)</p>', html, re.S)
    assert found, html
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", found[1])).strip()


def outcome(html: str) -> str:
    found = re.search(r'<div class="outcome" role="status">(.*?)\n  </div>\n', html, re.S)
    assert found, html
    return found[1]


# -- reopen --------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["staff", "admin"])
def test_a_dismissed_item_shows_a_reopen_button_that_puts_it_back_in_the_queue(
    client, keys, gateway, queue, role
):
    item = queue(1)
    gateway.dismiss_review(item.id, "test image", "pages-staff")
    login(client, keys[role])

    shown = client.get(f"/ui/review/{item.id}").text
    form = re.search(
        rf'<form class="reopen" method="post" action="/ui/review/{item.id}/reopen">(.*?)</form>',
        shown,
        re.S,
    )
    assert form, shown
    assert 'name="csrf_token"' in form[1] and ">Reopen</button>" in form[1]
    # And in the queue's list of dismissed items.
    listed = client.get("/ui/review?state=dismissed").text
    assert f'action="/ui/review/{item.id}/reopen"' in listed

    answer = post(client, f"/ui/review/{item.id}/reopen")

    assert answer.status_code == 303 and answer.headers["location"] == f"/ui/review/{item.id}"
    page = client.get(f"/ui/review/{item.id}").text
    assert "Reopened: the item is back in the queue" in page
    assert f'action="/ui/review/{item.id}/resolve"' in page  # open: the decisions again
    assert "/reopen" not in page
    assert gateway.review.get(item.id).state is ReviewState.OPEN
    reopened, dismissed = gateway.audit.list(subject=f"review:{item.id}")
    assert reopened.action == "review.reopen" and reopened.actor == f"pages-{role}"
    assert dismissed.action == "review.dismiss"
    assert "reopened a review item" in page  # the item's history shows it


def test_a_refused_reopen_says_why_on_the_page(client, keys, gateway, queue):
    item = queue(1)
    login(client, keys["staff"])

    answer = post(client, f"/ui/review/{item.id}/reopen")

    assert answer.status_code == 409
    assert alert(answer.text) == "Only a dismissed review item can be reopened; this one is open."
    assert gateway.review.get(item.id).state is ReviewState.OPEN
    assert gateway.audit.list() == []

    gateway.resolve_review(item.id, CHIDI, "pages-staff")
    answer = post(client, f"/ui/review/{item.id}/reopen")
    assert answer.status_code == 409
    assert alert(answer.text).endswith("this one is resolved.")
    assert "Resolved" in outcome(answer.text)  # the item as it is now


def test_a_reopen_refused_for_another_open_item_links_to_it(
    client, keys, gateway, queue, monkeypatch
):
    item = queue(1)
    gateway.dismiss_review(item.id, "not ours", "pages-staff")
    # Queued again while dismissals did not hold: an open item holds the same study.
    with monkeypatch.context() as patched:
        patched.setattr(gateway.review, "_dismissed", lambda pacs_name, study_uid: None)
        holder = queue(1)
    login(client, keys["staff"])

    answer = post(client, f"/ui/review/{item.id}/reopen")

    assert answer.status_code == 409
    assert alert(answer.text) == (
        f"Review item {holder.id} already holds this study in the queue; decide on that one "
        f"instead. Open review item {holder.id}"
    )
    assert f'<a href="/ui/review/{holder.id}">Open review item {holder.id}</a>' in answer.text
    assert gateway.review.get(item.id).state is ReviewState.DISMISSED


def test_reopen_is_for_reviewers_with_the_forms_token_and_an_existing_item(
    client, keys, gateway, queue
):
    item = queue(1)
    gateway.dismiss_review(item.id, "not ours", "pages-staff")
    login(client, keys["staff"])
    assert client.post(f"/ui/review/{item.id}/reopen", data={}).status_code == 403
    missing = post(client, "/ui/review/999999/reopen")
    assert missing.status_code == 404 and "No review item has this address" in missing.text
    client.cookies.clear()
    login(client, keys["clinician"])
    assert post(client, f"/ui/review/{item.id}/reopen").status_code == 403

    assert gateway.review.get(item.id).state is ReviewState.DISMISSED
    assert all(e.action != "review.reopen" for e in gateway.audit.list())


# -- resolve with siblings -----------------------------------------------------------------


def test_a_resolve_names_the_other_items_of_the_patient_it_resolved(client, keys, gateway, queue):
    first = queue(1)
    second = queue(2, origin=ReviewOrigin.FETCH)
    pushed = queue(3, origin=ReviewOrigin.PUSH)
    stranger = queue(4, patient=Outside(patient_id="X-99999"))
    gateway.attach_pushed_study = lambda item: None  # no files of the pushed study here
    login(client, keys["staff"])

    answer = post(client, f"/ui/review/{first.id}/resolve", r4_patient_id=str(CHIDI))

    assert answer.status_code == 303 and answer.headers["location"] == f"/ui/review/{first.id}"
    page = client.get(f"/ui/review/{first.id}").text
    assert "2 other items of the same PACS patient were resolved with it" in page
    shown = outcome(page)
    job = gateway.review.get(first.id).follow_up_job_id
    assert job and gateway.review.get(second.id).follow_up_job_id == job
    assert f'The studies are fetched by <a href="/ui/jobs/{job}">this fetch job</a>' in shown
    listed = re.findall(r'<li><a href="/ui/review/(\d+)">Item \d+</a>: ([^<]*)</li>', shown)
    assert listed == [
        (str(second.id), "Panoramic 2, 2 Aug 2024"),
        (
            str(pushed.id),
            "Panoramic 3, 3 Aug 2024 (sent unasked: attached from the files received)",
        ),
    ]
    assert f"/ui/review/{stranger.id}" not in shown
    assert gateway.review.get(stranger.id).is_open
    # Said once, after the resolve: the siblings' own pages and history keep the record.
    assert "resolved with it" not in client.get(f"/ui/review/{first.id}").text
    sibling_page = client.get(f"/ui/review/{second.id}").text
    assert f"resolved with review item {first.id}" in sibling_page


def test_a_resolve_without_siblings_reads_as_before(client, keys, gateway, queue):
    item = queue(1)
    login(client, keys["staff"])

    post(client, f"/ui/review/{item.id}/resolve", r4_patient_id=str(CHIDI))

    page = client.get(f"/ui/review/{item.id}").text
    assert "Resolved: the link is remembered and the study is being fetched." in page
    assert "resolved with it" not in page and 'class="siblings"' not in page
    assert "The study is fetched by" in outcome(page)
