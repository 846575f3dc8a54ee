"""Patient links through the API and from CSV: each change audited under the key's name, the
matcher following at once, bad files refused whole with the audit trail untouched."""

from __future__ import annotations

import pytest

HEADER = "pacs_patient_id,issuer,r4_patient_id"


def create(client, auth, body: dict, role: str = "staff"):
    return client.post("/api/v1/links", json=body, headers=auth(role))


def upload(client, auth, data: bytes | str, content_type: str = "text/csv"):
    content = data.encode() if isinstance(data, str) else data
    return client.post(
        "/api/v1/links/import",
        content=content,
        headers={**auth("staff"), "Content-Type": content_type},
    )


def test_create_read_list_and_delete_a_link_each_change_audited(
    client, auth, gateway, assert_problem
):
    body = {
        "pacs_patient_id": " EXT-77812 ",
        "issuer": "NORTHSIDE-RADIOLOGY",
        "r4_patient_id": 1003,
    }

    made = create(client, auth, body)

    assert made.status_code == 201, made.text
    link = made.json()
    assert made.headers["location"] == link["self"] == f"/api/v1/links/{link['id']}"
    assert (link["pacs_patient_id"], link["issuer"], link["r4_patient_id"]) == (
        "EXT-77812",
        "NORTHSIDE-RADIOLOGY",
        1003,
    )
    assert link["source"] == "api" and link["created_by"] == "test-staff"
    assert client.get(link["self"], headers=auth()).json() == link
    for query in ({"r4_patient_id": 1003}, {"pacs_patient_id": "EXT-77812"}, {}):
        listed = client.get("/api/v1/links", params=query, headers=auth()).json()["items"]
        assert [k["id"] for k in listed] == [link["id"]], query
    assert (
        client.get("/api/v1/links", params={"r4_patient_id": 1004}, headers=auth()).json()["items"]
        == []
    )
    assert gateway.links.pacs_ids_for(1003) == [("EXT-77812", "NORTHSIDE-RADIOLOGY")]

    same = create(client, auth, body, role="admin")
    assert same.status_code == 200 and same.json()["id"] == link["id"]
    assert len(gateway.audit.list()) == 1  # nothing changed, nothing audited

    deleted = client.delete(link["self"], headers=auth("admin"))
    assert deleted.status_code == 204 and deleted.content == b""
    assert_problem(client.get(link["self"], headers=auth()), 404, "link-not-found")
    assert_problem(client.delete(link["self"], headers=auth()), 404, "link-not-found")
    events = client.get(
        "/api/v1/audit", params={"subject": f"link:{link['id']}"}, headers=auth()
    ).json()["items"]
    assert [(e["action"], e["actor"]) for e in events] == [
        ("link.delete", "test-admin"),
        ("link.create", "test-staff"),
    ]
    assert events[0]["before"]["r4_patient_id"] == 1003 and events[0]["after"] is None
    assert events[1]["before"] is None and events[1]["after"]["pacs_patient_id"] == "EXT-77812"


def test_the_matcher_follows_links_as_they_change(client, auth, gateway, twin):
    matcher = gateway.patients.matcher()
    assert matcher.match(twin.patient()).needs_review  # twins: never an automatic link

    made = create(
        client,
        auth,
        {"pacs_patient_id": twin.patient_id, "issuer": twin.issuer, "r4_patient_id": 1006},
    )
    linked = gateway.patients.matcher().match(twin.patient())
    client.delete(made.json()["self"], headers=auth())
    unlinked = gateway.patients.matcher().match(twin.patient())

    assert linked.auto_linked and linked.r4_patient_id == 1006
    assert unlinked.needs_review


def test_a_link_needs_a_known_r4_patient_and_no_other_link(client, auth, gateway, assert_problem):
    first = create(client, auth, {"pacs_patient_id": "EXT-1", "r4_patient_id": 1001})
    assert first.status_code == 201
    audit_before = gateway.audit.list()

    unknown = create(client, auth, {"pacs_patient_id": "EXT-2", "r4_patient_id": 4999})
    conflict = create(client, auth, {"pacs_patient_id": "EXT-1", "r4_patient_id": 1002})
    other_issuer = create(
        client, auth, {"pacs_patient_id": "EXT-1", "issuer": "ELSEWHERE", "r4_patient_id": 1002}
    )

    assert_problem(unknown, 422, "unknown-r4-patient")
    body = assert_problem(conflict, 409, "link-conflict")
    assert f"link {first.json()['id']}" in body["detail"]
    # The same id from another issuer is another patient's id: no conflict.
    assert other_issuer.status_code == 201
    assert gateway.links.r4_patient_for("EXT-1", "") == 1001
    assert gateway.audit.list()[1:] == audit_before


@pytest.mark.parametrize(
    "body",
    [
        {"pacs_patient_id": "", "r4_patient_id": 1001},
        {"pacs_patient_id": "   ", "r4_patient_id": 1001},
        {"pacs_patient_id": "X" * 65, "r4_patient_id": 1001},
        {"pacs_patient_id": "EXT-1", "issuer": "I" * 65, "r4_patient_id": 1001},
        {"pacs_patient_id": "EXT-1", "r4_patient_id": 0},
        {"pacs_patient_id": "EXT-1"},
        {"pacs_patient_id": "EXT-1", "r4_patient_id": 1001, "note": "x"},
        {"pacs_patient_id": "EXT-*", "r4_patient_id": 1001},
        {"pacs_patient_id": "EXT-?", "r4_patient_id": 1001},
        {"pacs_patient_id": "EXT-1", "issuer": "NORTH\\SIDE", "r4_patient_id": 1001},
    ],
)
def test_an_invalid_link_body_is_422(client, auth, gateway, body, assert_problem):
    assert_problem(create(client, auth, body), 422, "invalid-request")
    assert gateway.links.list() == [] and gateway.audit.list() == []


def test_import_reports_every_row_with_its_line_and_reason(client, auth, gateway):
    existing = create(client, auth, {"pacs_patient_id": "EXT-10", "r4_patient_id": 1001})
    clash = create(client, auth, {"pacs_patient_id": "EXT-11", "r4_patient_id": 1001})
    audit_before = len(gateway.audit.list())
    rows = [
        HEADER,
        "EXT-77812,NORTHSIDE-RADIOLOGY,1003",  # 2 created
        "EXT-20,,1004",  # 3 created
        "",  # 4 blank: skipped
        "EXT-10,,1001",  # 5 unchanged: exists
        "EXT-11,,1002",  # 6 rejected: linked to 1001
        "EXT-21,,4999",  # 7 rejected: no such R4 patient
        "EXT-22,,Okafor",  # 8 rejected: not a number
        "EXT-23,1005",  # 9 rejected: two columns
        ",,1005",  # 10 rejected: no PACS id
        "EXT-20,,1004",  # 11 unchanged: repeats line 3
        "EXT-20,,1006",  # 12 rejected: contradicts line 3
        '"EXT-24","ISSUER, WITH COMMA",1006',  # 13 created
        "EXT-2*,,1006",  # 14 rejected: a wildcard would link every EXT-2… patient
    ]

    answer = upload(client, auth, "\r\n".join(rows) + "\r\n")

    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert (report["created"], report["unchanged"], report["rejected"]) == (3, 2, 7)
    outcomes = {r["row"]: (r["outcome"], r["reason"]) for r in report["rows"]}
    assert outcomes == {
        2: ("created", None),
        3: ("created", None),
        5: ("unchanged", None),
        6: (
            "rejected",
            "this PACS patient id is already linked to another R4 patient "
            f"(link {clash.json()['id']})",
        ),
        7: ("rejected", "no R4 patient has this id"),
        8: ("rejected", "the R4 patient id is not a whole number"),
        9: ("rejected", "expected 3 columns, found 2"),
        10: ("rejected", "the PACS patient id must have 1 to 64 characters"),
        11: ("unchanged", "the same link as line 3"),
        12: ("rejected", "line 3 links this PACS patient id to another R4 patient"),
        13: ("created", None),
        14: (
            "rejected",
            "the PACS patient id must not contain the DICOM matching characters * ? or \\",
        ),
    }
    by_row = {r["row"]: r["link_id"] for r in report["rows"]}
    assert by_row[5] == existing.json()["id"]
    assert gateway.links.r4_patient_for("EXT-77812", "NORTHSIDE-RADIOLOGY") == 1003
    assert gateway.links.r4_patient_for("EXT-24", "ISSUER, WITH COMMA") == 1006
    assert gateway.links.r4_patient_for("EXT-11", "") == 1001
    assert gateway.links.r4_patient_for("EXT-21", "") is None
    imported = gateway.audit.list()[: len(gateway.audit.list()) - audit_before]
    assert sorted(e.subject for e in imported) == sorted(f"link:{by_row[n]}" for n in (2, 3, 13))
    assert {(e.action, e.actor) for e in imported} == {("link.import", "test-staff")}
    # Reasons name the problem, never the row's values.
    reasons = " ".join(r["reason"] or "" for r in report["rows"])
    assert not any(v in reasons for v in ("EXT-", "Okafor", "4999", "1002", "1006"))


def test_import_accepts_excel_csv_with_bom_and_semicolons(client, auth, gateway):
    data = "\ufeffPACS_Patient_ID;Issuer;R4_Patient_ID\r\nEXT-30;;1001\r\n".encode()

    answer = upload(client, auth, data, "text/csv; charset=utf-8")

    assert answer.status_code == 200, answer.text
    assert answer.json()["created"] == 1
    assert gateway.links.r4_patient_for("EXT-30", "") == 1001


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (
            "pacs_id,issuer,r4_patient_id\nEXT-40,,1001\n",
            "The first line must be the header 'pacs_patient_id,issuer,r4_patient_id'",
        ),
        (
            "r4_patient_id,issuer,pacs_patient_id\n1001,,EXT-40\n",
            "The first line must be the header",
        ),
        ("EXT-40,,1001\nEXT-41,,1002\n", "The first line must be the header"),
        ("", "The first line must be the header"),
        (f"{HEADER}\n", "The file has a header but no rows"),
        (f"{HEADER}\n\n \n", "The file has a header but no rows"),
        (f"{HEADER}\nEXT-40,,10\x0001\n".encode(), "NUL characters"),
        (f"{HEADER}\nMüller,,1001\n".encode("latin-1"), "not UTF-8 text"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not UTF-8 text"),
    ],
)
def test_a_malformed_file_is_refused_whole(client, auth, gateway, data, detail, assert_problem):
    create(client, auth, {"pacs_patient_id": "EXT-1", "r4_patient_id": 1001})
    audit_before = gateway.audit.list()

    body = assert_problem(upload(client, auth, data), 422, "invalid-link-file")

    assert detail in body["detail"]
    assert [k.pacs_patient_id for k in gateway.links.list()] == ["EXT-1"]
    assert gateway.audit.list() == audit_before


def test_import_needs_text_csv_and_fits_the_body_limit(client, auth, gateway, assert_problem):
    as_json = client.post(
        "/api/v1/links/import",
        json={"rows": [["EXT-1", "", 1001]]},
        headers=auth(),
    )
    big = HEADER + "\n" + "".join(f"EXT-{n:06},,1001\n" for n in range(6000))

    assert_problem(as_json, 415, "unsupported-media-type")
    assert_problem(upload(client, auth, big), 413)
    assert gateway.links.list() == [] and gateway.audit.list() == []


def test_the_audit_list_pages_newest_first_and_filters_by_subject(
    client, auth, gateway, assert_problem
):
    for n in range(5):
        create(client, auth, {"pacs_patient_id": f"EXT-{n}", "r4_patient_id": 1001})

    page = client.get("/api/v1/audit", params={"limit": 2, "offset": 1}, headers=auth()).json()
    events = gateway.audit.list()
    ids = [e.id for e in events]
    one = client.get("/api/v1/audit", params={"subject": events[3].subject}, headers=auth())

    assert [e["id"] for e in page["items"]] == ids[1:3] and ids == sorted(ids, reverse=True)
    assert (page["limit"], page["offset"]) == (2, 1)
    assert [e["id"] for e in one.json()["items"]] == [events[3].id]
    for bad in ({"subject": "patient:1"}, {"subject": "link:1 OR 1=1"}, {"offset": -1}):
        assert_problem(client.get("/api/v1/audit", params=bad, headers=auth()), 422)
