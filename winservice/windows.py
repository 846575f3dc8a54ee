"""The pywin32 layer: the Windows service class and the install/remove/start/stop/status calls.

Import only on Windows (pywin32: `pip install "pacs-gateway[windows]"`). Everything decided
here comes from a ServiceSpec; this module only hands it to the Service Control Manager.
Not exercised by the Linux CI: see docs/deployment.md, "What was verified how".
"""

from __future__ import annotations

import contextlib
import threading

import servicemanager  # type: ignore[import-not-found]
import win32console  # type: ignore[import-not-found]
import win32gui  # type: ignore[import-not-found]
import win32service  # type: ignore[import-not-found]
import win32serviceutil  # type: ignore[import-not-found]

from winservice.spec import ServiceSpec
from winservice.supervisor import Supervisor

_START_TYPES = {
    "delayed-auto": win32service.SERVICE_AUTO_START,
    "auto": win32service.SERVICE_AUTO_START,
    "manual": win32service.SERVICE_DEMAND_START,
}
_STATES = {
    win32service.SERVICE_STOPPED: "stopped",
    win32service.SERVICE_START_PENDING: "starting",
    win32service.SERVICE_STOP_PENDING: "stopping",
    win32service.SERVICE_RUNNING: "running",
    win32service.SERVICE_PAUSED: "paused",
}


class SupervisedService(win32serviceutil.ServiceFramework):
    """Hosted by pythonservice.exe; reads its spec from the service's registered options."""

    _svc_name_ = "PacsGateway"
    _svc_display_name_ = "PACS Gateway"

    def __init__(self, args: list[str]) -> None:
        super().__init__(args)
        self._name = args[0]  # the name it was installed under
        self._stop = threading.Event()

    def SvcStop(self) -> None:
        self.ReportServiceStatus(win32service.SERVICE_STOP_PENDING)
        self._stop.set()

    def SvcDoRun(self) -> None:
        name = self._name
        # A service has no console, and Ctrl+Break (the polite stop) travels only between
        # processes sharing one: give the host a hidden console the child inherits.
        with contextlib.suppress(Exception):
            win32console.AllocConsole()
            win32gui.ShowWindow(win32console.GetConsoleWindow(), 0)
        keys = ("command", "working_dir", "log_path", "log_max_bytes", "log_backup_count")
        options = {k: win32serviceutil.GetServiceCustomOption(name, k) for k in keys}
        options["stop_timeout"] = win32serviceutil.GetServiceCustomOption(
            name, "stop_timeout", "60"
        )
        spec = ServiceSpec.from_options(name, name, options)
        servicemanager.LogInfoMsg(f"{name}: running {spec.command_line()}")
        Supervisor(spec).run(self._stop)


def install(spec: ServiceSpec, password: str | None) -> None:
    win32serviceutil.InstallService(
        f"{SupervisedService.__module__}.{SupervisedService.__qualname__}",
        spec.name,
        spec.display_name,
        startType=_START_TYPES[spec.start_type],
        userName=spec.account,
        password=password,
        description=spec.description,
        delayedstart=spec.start_type == "delayed-auto",
    )
    for key, value in spec.to_options().items():
        win32serviceutil.SetServiceCustomOption(spec.name, key, value)
    _set_failure_actions(spec)


def _set_failure_actions(spec: ServiceSpec) -> None:
    manager = win32service.OpenSCManager(None, None, win32service.SC_MANAGER_ALL_ACCESS)
    try:
        service = win32service.OpenService(manager, spec.name, win32service.SERVICE_ALL_ACCESS)
        try:
            actions = [
                (win32service.SC_ACTION_RESTART, a.delay_seconds * 1000)
                for a in spec.failure_actions
            ]
            win32service.ChangeServiceConfig2(
                service,
                win32service.SERVICE_CONFIG_FAILURE_ACTIONS,
                {
                    "ResetPeriod": spec.failure_reset_seconds,
                    "RebootMsg": None,
                    "Command": None,
                    "Actions": actions,
                },
            )
            # Failure actions also when the host exits with an error, not only on a crash.
            win32service.ChangeServiceConfig2(
                service, win32service.SERVICE_CONFIG_FAILURE_ACTIONS_FLAG, True
            )
        finally:
            win32service.CloseServiceHandle(service)
    finally:
        win32service.CloseServiceHandle(manager)


def remove(name: str) -> None:
    win32serviceutil.RemoveService(name)


def start(name: str) -> None:
    win32serviceutil.StartService(name)


def stop(name: str) -> None:
    win32serviceutil.StopService(name)


def status(name: str) -> str:
    state = win32serviceutil.QueryServiceStatus(name)[1]
    return _STATES.get(state, f"state {state}")
