"""One patient means one patient: a PACS that widens a query never puts another person's study
into a fetch. The widening PACS is a real Orthanc whose Lua `IncomingFindRequestFilter` turns
every PatientID key into a prefix wildcard ("R4-1003" -> "R4-10*"), as a misconfigured or
"helpful" PACS would; the demo patients R4-1001 to R4-1006 share that prefix."""

from __future__ import annotations

import demo_studies
import pytest
from demo_practice import r4_patient_id
from orthanc_server import HOST, wait_until

import jobs
from gateway.fetch.request import FetchRequest

WIDEN = """
function IncomingFindRequestFilter(query, origin)
  local id = query['0010,0020']
  if id ~= nil and id ~= '' then
    query['0010,0020'] = string.sub(id, 1, 5) .. '*'
  end
  return query
end
"""

PATIENT = demo_studies.SAME_PERSON_IDS[0]  # R4-1003, Dubois at the practice


@pytest.fixture
def widening_orthanc(orthanc_factory, gateway_modality, demo_catalog, tmp_path):
    script = tmp_path / "widen.lua"
    script.write_text(WIDEN)
    server = orthanc_factory(
        modalities={"gateway": gateway_modality}, config_overrides={"LuaScripts": [str(script)]}
    )
    # Every small study: the shared-prefix patients without the 240-slice CT.
    files = [f for s in demo_catalog.studies if s.instance_count < 50 for f in s.files]
    demo_studies.store(files, HOST, server.dicom_port, server.ae_title)
    return server


def _finish(gateway, job: jobs.Job) -> jobs.Job:
    finished = {s.value for s in jobs.FINISHED_STATES}
    assert wait_until(lambda: gateway.jobs.get(job.id).state in finished, 120)
    return gateway.jobs.get(job.id)


@pytest.mark.parametrize("by", ["pacs_patient_id", "r4_patient_id"])
def test_a_widened_answer_is_left_out_and_said(
    wired_gateway, widening_orthanc, demo_catalog, demo_r4_url, by
):
    gateway = wired_gateway(widening_orthanc, r4_url=demo_r4_url)
    value = PATIENT if by == "pacs_patient_id" else str(r4_patient_id(PATIENT))
    job, _ = gateway.submit_fetch(FetchRequest(**{by: value}))

    done = _finish(gateway, job)

    own = [s for s in demo_catalog.studies_for(PATIENT) if s.instance_count < 50]
    assert done.state == "succeeded", done.message
    assert done.message.startswith(f"Fetched {len(own)} studies")
    stored = {p.parent.parent.name for p in gateway.settings.studies_dir.rglob("*.dcm")}
    assert stored == {s.study_uid for s in own}
    for study in own:
        assert gateway.index.study(study.study_uid).pacs_patient_id == PATIENT
    others = [
        s
        for s in demo_catalog.studies
        if s.patient_id != PATIENT and s.patient_id.startswith("R4-10") and s.instance_count < 50
    ]
    assert others and all(gateway.index.study(s.study_uid) is None for s in others)
    assert gateway.review.count() == 0  # not matched, not queued: simply not this patient's
    notes = [e.message for e in gateway.jobs.events(job.id)]
    left_out = f"The PACS answered {len(others)} studies of another patient than the one asked"
    assert any(n.startswith(left_out) for n in notes), notes
    assert not any(o.patient_id in " ".join(notes) for o in others)
