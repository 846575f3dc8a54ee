"""Practice side: Carestream R4 reads, the Flynotes client, the SQS command loop, self-update.

Never imports `gateway`, `pacs` or `jobs`; what it needs from them comes in as callables.

- `mapping`, `database`, `patients`: which R4 tables/columns hold what (two presets from
  evidence, remappable in `[r4]`), the connection, the reads (SQL Server 2008 constructs only)
- `check`, `startup`: `pacs-gateway check`'s R4 part; the start-up order with its exit codes
- `records`: the typed patient record handed to the gateway
- `flynotes`, `sync`: the Flynotes API client (docs/flynotes-api.md), bulk upload, full sync
- `messages`, `handlers`, `commands`: SQS command messages, what they do, the polling loop
- `selfupdate`, `schedule`: version check and pip update, hourly tasks
- `sample_data`, `fake_flynotes`: synthetic practice data and a local Flynotes for tests/demos
"""
