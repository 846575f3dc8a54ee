"""Prefetch for a day's appointments: where each patient stands, and starting a pass by hand."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.auth import Permission, require
from gateway.api.deps import GatewayDep
from gateway.api.schemas import API
from gateway.prefetch.day import PatientDay, PatientState, summary

router = APIRouter(prefix=API, tags=["prefetch"])


class PrefetchPatient(BaseModel):
    r4_patient_id: int = Field(description="The patient's id in R4.")
    starts_at: datetime = Field(description="The appointment's start, as R4 holds it.")
    state: PatientState = Field(
        description="waiting (no prefetch yet), fetching, ready, needs_review, not_fetched."
    )
    job_id: str | None = Field(None, description="The newest prefetch job for that day.")
    message: str = Field("", description="That job's sentence.")

    @classmethod
    def of(cls, day: PatientDay) -> PrefetchPatient:
        return cls(
            r4_patient_id=day.planned.r4_patient_id,
            starts_at=day.planned.starts_at,
            state=day.state,
            job_id=day.job.id if day.job else None,
            message=day.job.message if day.job else "",
        )


class PrefetchDay(BaseModel):
    day: date = Field(description="The appointment day.")
    summary: str = Field(description='E.g. "Tue 8 Dec: 38 patients — 35 ready, 2 need review".')
    patients: list[PrefetchPatient] = Field(description="Earliest appointment first.")


class PrefetchRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    day: date = Field(description="The appointment day whose patients are prefetched.")


def _day(day: date, days: list[PatientDay]) -> PrefetchDay:
    return PrefetchDay(
        day=day, summary=summary(day, days), patients=[PrefetchPatient.of(d) for d in days]
    )


@router.get(
    "/prefetch",
    response_model=PrefetchDay,
    summary="A day's patients and where their prefetch stands",
    dependencies=[Depends(require(Permission.READ))],
    responses={422: {"description": "Prefetch cannot run here (R4 or its appointments)."}},
)
def prefetch_day(
    gateway: GatewayDep,
    day: Annotated[date, Query(description="The appointment day, YYYY-MM-DD.")],
) -> PrefetchDay:
    return _day(day, gateway.prefetch_status(day))


@router.post(
    "/prefetch/runs",
    status_code=202,
    response_model=PrefetchDay,
    summary="Prefetch a day's patients now",
    description="Queues one background fetch per patient with an appointment that day (a "
    "patient already being fetched joins that job); what a person asks for is still claimed "
    "first. Answers with the day's state right after queuing.",
    dependencies=[Depends(require(Permission.MANAGE_JOBS))],
    responses={422: {"description": "Prefetch cannot run here (R4 or its appointments)."}},
)
def start_prefetch(body: PrefetchRun, gateway: GatewayDep) -> PrefetchDay:
    gateway.prefetch(body.day)
    return _day(body.day, gateway.prefetch_status(body.day))
