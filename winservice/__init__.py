"""Run one command line as a Windows service: restarted when it exits, logged to a rotating file.

Knows nothing of the gateway: `gateway/cli/windows_service.py` builds a ServiceSpec (what to run, as
whom) and hands it over.
- `spec`: the platform-independent description of the service: name, command line, account,
  restart policy, failure actions, log rotation. Plain data, unit-tested on any platform.
- `supervisor`: runs the command, copies its output into the rotating log, restarts it (at once
  after exit code 75, the "restart me" code of a self-update; after a growing delay after a
  crash) until asked to stop. Platform-independent; tested on Linux with real processes.
- `windows`: the thin pywin32 layer (service class, install/remove/start/stop/status). Imported
  only on Windows; pywin32 comes with the `windows` extra.
"""
