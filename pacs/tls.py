"""DICOM over TLS (PS3.15 Annex B, "secure transport connection"): the contexts for our own
associations and for the Storage SCP, and what a failed handshake means, in one sentence.

TLS 1.2 at least, the system's cipher choice, and the peer's certificate always checked:
against `ca_file` (a practice's own CA) or the system's CAs, and against the host name or
address the PACS is configured with. Files are read when a context is first built; a renewed
certificate is read at the next start.

pynetdicom only logs why a handshake failed and reports an association that never came up,
so on that failure path `client_problem` shakes hands once more on its own and turns
OpenSSL's reason into words; `server_problem` does the same for a sender the SCP refused.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

# OpenSSL's X509_V_ERR_* codes that have words of their own.
_EXPIRED = 10
_NOT_YET_VALID = 9
_UNTRUSTED = {2, 18, 19, 20, 21, 27}  # no issuer known, self-signed, untrusted chain
_WRONG_HOST = 62
# OpenSSL reasons meaning the other side does not speak TLS on that port.
_NOT_TLS = {
    "WRONG_VERSION_NUMBER",
    "UNKNOWN_PROTOCOL",
    "RECORD_LAYER_FAILURE",
    "PACKET_LENGTH_TOO_LONG",
    "HTTP_REQUEST",
    "UNEXPECTED_EOF_WHILE_READING",
    "UNEXPECTED_RECORD",
}


class TlsConfigurationError(ValueError):
    """A certificate, key or CA file that cannot be used; the message names the file."""


@dataclass(frozen=True)
class TlsClient:
    """How we connect to one PACS over TLS. `ca_file` None: the system's CAs. `cert_file`
    and `key_file`: our client certificate, for a PACS that asks for one."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    def context(self) -> ssl.SSLContext:
        """Raises TlsConfigurationError."""
        return _client_context(self)


@dataclass(frozen=True)
class TlsServer:
    """The Storage SCP's TLS: its certificate and key, and `ca_file` to require (and check)
    a client certificate from every sender."""

    cert_file: Path
    key_file: Path
    ca_file: Path | None = None

    def context(self) -> ssl.SSLContext:
        """Raises TlsConfigurationError."""
        return _server_context(self)


@functools.lru_cache(maxsize=32)
def _client_context(tls: TlsClient) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=str(tls.ca_file) if tls.ca_file else None
        )
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigurationError(_file_problem("tls_ca_file", tls.ca_file, exc)) from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls.cert_file is not None:
        _load_chain(context, tls.cert_file, tls.key_file, "tls_cert_file", "tls_key_file")
    return context


@functools.lru_cache(maxsize=4)
def _server_context(tls: TlsServer) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_chain(context, tls.cert_file, tls.key_file, "dicom_tls_cert_file", "dicom_tls_key_file")
    if tls.ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(tls.ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise TlsConfigurationError(
                _file_problem("dicom_tls_ca_file", tls.ca_file, exc)
            ) from None
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _load_chain(
    context: ssl.SSLContext, cert: Path, key: Path | None, cert_name: str, key_name: str
) -> None:
    for setting, path in ((cert_name, cert), (key_name, key)):
        if path is not None and not path.is_file():
            raise TlsConfigurationError(f"{setting} ({path}) does not exist.")
    try:
        context.load_cert_chain(str(cert), str(key) if key else None)
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigurationError(
            f"{cert_name} ({cert}) and {key_name} ({key}) cannot be used together: "
            f"{_reason(exc).lower()}. They must be PEM files, the key unencrypted and "
            "matching the certificate."
        ) from None


def _file_problem(setting: str, path: Path | None, exc: Exception) -> str:
    if path is not None and not path.is_file():
        return f"{setting} ({path}) does not exist."
    return (
        f"{setting} ({path}) cannot be used: {_reason(exc).lower()}; it must be a PEM file "
        "of CA certificates."
    )


def client_problem(host: str, port: int, tls: TlsClient | None, timeout: float) -> str | None:
    """Why an association to `host:port` did not come up, as far as TLS can tell: a clause
    ("its TLS certificate has expired"), or None when TLS is not the reason.

    With `tls` None (a plain association), says whether the port speaks TLS instead."""
    context = tls.context() if tls is not None else _probe_context()
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=host) as wrapped,
        ):
            if tls is None:
                return (
                    "that port speaks TLS: set tls = true for this PACS (and tls_ca_file "
                    "to the CA that signed its certificate)"
                )
            # TLS 1.3: a refused client certificate is only said after the handshake.
            wrapped.settimeout(min(timeout, 1.0))
            with contextlib.suppress(TimeoutError):
                wrapped.recv(1)
    except ssl.SSLCertVerificationError as exc:
        return _certificate_words(exc, host, tls)
    except ssl.SSLError as exc:
        if tls is None:
            return None
        return _handshake_words(_reason(exc), tls)
    except (ConnectionError, TimeoutError, OSError):
        if tls is None:
            return None
        return (
            "it does not speak TLS on that port, it broke off the TLS handshake (set "
            "tls = false, or use its TLS port)"
        )
    return None


def server_problem(exc: BaseException, timeout: float) -> str:
    """Why the Storage SCP refused a sender's TLS handshake, as a clause."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = exc.verify_code
        if code == _EXPIRED:
            return "its client certificate has expired"
        if code == _NOT_YET_VALID:
            return "its client certificate is not valid yet (check its clock)"
        if code in _UNTRUSTED:
            return "its client certificate is not signed by the CA in dicom_tls_ca_file"
        return f"its client certificate was not accepted ({exc.verify_message})"
    if isinstance(exc, TimeoutError):
        return f"it did not complete a TLS handshake within {timeout:g} s"
    reason = _reason(exc) if isinstance(exc, ssl.SSLError) else ""
    if "PEER_DID_NOT_RETURN_A_CERTIFICATE" in reason:
        return "it sent no client certificate, and dicom_tls_ca_file requires one"
    if reason in _NOT_TLS or not reason:
        return "it did not start TLS (a plain DICOM association to the gateway's TLS port?)"
    return f"the TLS handshake failed ({reason.lower().replace('_', ' ')})"


def _certificate_words(exc: ssl.SSLCertVerificationError, host: str, tls: TlsClient | None) -> str:
    code = exc.verify_code
    if code == _EXPIRED:
        return "its TLS certificate has expired; the PACS's administrator must renew it"
    if code == _NOT_YET_VALID:
        return "its TLS certificate is not valid yet (check the clocks of both machines)"
    if code in _UNTRUSTED:
        where = (
            f"the CA in tls_ca_file ({tls.ca_file})"
            if tls is not None and tls.ca_file
            else "a CA this machine trusts (set tls_ca_file)"
        )
        return f"its TLS certificate is not signed by {where}"
    if code == _WRONG_HOST:
        return (
            f"its TLS certificate is not made out to {host}: use the name or address the "
            "certificate names as this PACS's host"
        )
    return f"its TLS certificate was not accepted ({exc.verify_message})"


def _handshake_words(reason: str, tls: TlsClient) -> str:
    if reason in _NOT_TLS:
        return "it does not speak TLS on that port (set tls = false, or use its TLS port)"
    if "CERTIFICATE_REQUIRED" in reason or (
        tls.cert_file is None and "HANDSHAKE_FAILURE" in reason
    ):
        return (
            "it asks for a client certificate: set tls_cert_file and tls_key_file to one "
            "its CA signed"
        )
    if "CERTIFICATE_EXPIRED" in reason:
        return f"it refused the gateway's client certificate ({tls.cert_file}) as expired"
    if "UNKNOWN_CA" in reason or "BAD_CERTIFICATE" in reason or "DECRYPT_ERROR" in reason:
        return (
            f"it refused the gateway's client certificate ({tls.cert_file}): it is not "
            "signed by a CA the PACS trusts"
        )
    return f"the TLS handshake failed ({reason.lower().replace('_', ' ')})"


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    if isinstance(reason, str) and reason:
        return reason.upper()
    text = str(exc)
    return text.split("] ", 1)[-1].split(" (_ssl")[0].upper().replace(" ", "_")


def _probe_context() -> ssl.SSLContext:
    """Only to learn whether a port speaks TLS at all: nothing is sent over it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
