"""The `[r4]` part of docs/configuration.md: settings, both presets side by side, the evidence.

Kept apart from `gateway.core.settings_doc` so the R4 mapping's documentation lives with its owner.
"""

from __future__ import annotations

from gateway.core.settings import R4Settings
from r4.mapping import PRESETS, R4Mapping

EVIDENCE = """
Nobody on this project has seen an installed R4: the names below come from public notes of
other R4 integrations and from real installs (issue 11 lists them). Run
`pacs-gateway check` at install: it reports every mapped column as found or missing and
suggests the real column most like a missing one. Fix a mismatch here, without a code change.

- **Server**: SQL Server 2008 R2 (10.50.4000). Every query is checked in CI to use nothing
  newer than 2008 (no `TRIM`, `CONCAT`, `IIF`, `OFFSET … FETCH`...).
- **`sys2000`** (classic R4, the default): `dbo.Patients` keyed by the int `PatientCode`, with
  `Title`, `Forename`, `Surname`, `DOB`, `Sex`, `MobileNo`, `Email` (read by other
  integrations). The R4 patient id the API, the review queue and links use is `PatientCode`,
  and so is the id rule's chart number unless `chart_number` names another column.
- **`NG_R4_Sys2000`** (newer R4): `dbo.Patient` and `dbo.Person`, both keyed by a GUID
  `RecordID`; `Patient.ChartNumber` is often blank; `Person.PMSRecordID` (nvarchar) holds the
  classic `PatientCode` as text for some rows. The R4 patient id is that `PMSRecordID` when it
  is 1-9 digits (compared with padding trimmed); rows without such a value have no R4 patient
  id and are neither uploaded nor matched (`check` counts them). The join on `RecordID` and
  the `Person` demographic columns (`FirstName`, `LastName`, `DateOfBirth`, `Gender`,
  `MobilePhone`, `Email`, `Title`) are **guesses**: confirm them with `check`.
- **Not known publicly**, so unmapped by default: address, an active/archived flag, middle
  and preferred names, NHS number, home/work phones and the medical history / questionnaire
  tables. Unmapped means absent: patients are uploaded without an address (they are still
  valid), a full sync carries no medical history, the questionnaire debug messages report
  nothing. Map them here once `check` (or the practice's R4 support) shows their names.
- **Active flag** (`active`, 0 = archived): the hourly bulk upload sends *all* patients,
  archived ones too, as the practice software always did: a returning patient must be
  consentable the moment they walk in, before anyone un-archives them. Staff search and the
  matcher's index leave archived patients out.
- Other tables seen on `sys2000` but not read: `Appts (PatientCode, ...)`, `Users (UserCode,
  FullName, Title, "Current")`, `PatientNotes`, `TreatmentPlans`, `Transactions`, `BPE`.
"""


def render_r4() -> str:
    rows = [
        "| key (`[r4]`) | environment | `sys2000` | `NG_R4_Sys2000` | meaning |",
        "|---|---|---|---|---|",
    ]
    mapping_fields = set(R4Mapping.model_fields)
    for name, field in R4Settings.model_fields.items():
        if name in mapping_fields and name != "preset":
            default = field.default
            classic = PRESETS["sys2000"].get(name, default)
            ng = PRESETS["NG_R4_Sys2000"].get(name, default)
        elif name == "preset" or name == "database":
            classic, ng = "sys2000", "NG_R4_Sys2000"
        else:
            classic = ng = field.default
        meaning = (field.description or "").replace("|", "\\|")
        rows.append(
            f"| `{name}` | `PACS_GATEWAY_R4__{name.upper()}` | {_cell(classic)} | {_cell(ng)} "
            f"| {meaning} |"
        )
    example = (
        "\nExample: the newer database, with the chart number from `Patient.ChartNumber`:\n\n"
        '```toml\n[r4]\nodbc_driver = "SQL Server Native Client 11.0"\n'
        'database = "NG_R4_Sys2000"\npreset = "NG_R4_Sys2000"\n'
        'chart_number = "Patient.ChartNumber"\nemail = ""   # not at this practice\n```\n'
        "\nThe same in the environment: `PACS_GATEWAY_R4__PRESET=NG_R4_Sys2000`, "
        '`PACS_GATEWAY_R4__CHART_NUMBER=Patient.ChartNumber`. A field set to `""` is unmapped. '
        "The older top-level `r4_database_url`, `r4_odbc_driver`, `r4_server` and "
        "`r4_database` still work; values in `[r4]` win.\n"
    )
    return (
        "\n## R4 database and mapping (`[r4]` in the TOML file)\n"
        + EVIDENCE
        + "\n"
        + "\n".join(rows)
        + "\n"
        + example
    )


def _cell(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"
