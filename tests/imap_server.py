"""A real Dovecot (IMAP with STARTTLS, IMAPS, POP3S) on loopback ports, for the bounce mailbox.

Dovecot runs in the foreground from a folder of its own; its login processes run as `dovenull`
and mail as `nobody`, so that folder is world-traversable. Skips when Dovecot is not installed
(.ci/run installs it).
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from cryptography import x509

from tests.certs import self_signed
from tests.smtp_server import free_port

USER = "bounces"
PASSWORD = "a-mailbox-password"
NOBODY = 65534


class Dovecot:
    """One Dovecot server with one mailbox user."""

    def __init__(self) -> None:
        if shutil.which("dovecot") is None:
            pytest.skip("Dovecot is not installed (apt-get install dovecot-imapd dovecot-pop3d)")
        self.root = Path(tempfile.mkdtemp(prefix="mp-dovecot-"))
        self.root.chmod(0o755)
        self.cert, key = self_signed(self.root, "localhost", x509.DNSName("localhost"), "tls")
        mail = self.root / "mail"
        mail.mkdir()
        os.chown(mail, NOBODY, NOBODY)
        passwd = self.root / "passwd"
        passwd.write_text(f"{USER}:{{PLAIN}}{PASSWORD}:{NOBODY}:{NOBODY}::{mail}::\n")
        self.imap_port, self.imaps_port, self.pop3s_port = free_port(), free_port(), free_port()
        conf = self.root / "dovecot.conf"
        conf.write_text(
            f"""
protocols = imap pop3
listen = 127.0.0.1
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.root}/dovecot.log
ssl = yes
ssl_cert = <{self.cert}
ssl_key = <{key}
disable_plaintext_auth = yes
auth_mechanisms = plain login
mail_location = maildir:{mail}/Maildir
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
passdb {{
  driver = passwd-file
  args = {passwd}
}}
userdb {{
  driver = passwd-file
  args = {passwd}
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = {self.imaps_port}
    ssl = yes
  }}
}}
service pop3-login {{
  chroot =
  inet_listener pop3 {{
    port = 0
  }}
  inet_listener pop3s {{
    port = {self.pop3s_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
"""
        )
        self.proc = subprocess.Popen(
            ["dovecot", "-F", "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._wait_listening()

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"dovecot exited: {err}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.pop3s_port), timeout=0.5),
            ):
                return
            time.sleep(0.05)
        raise RuntimeError("dovecot did not start listening")

    def url(self, scheme: str) -> str:
        """Return the mailbox URL for a scheme: imaps, imap (STARTTLS) or pop3s."""
        port = {"imaps": self.imaps_port, "imap": self.imap_port, "pop3s": self.pop3s_port}
        return f"{scheme}://{USER}:{PASSWORD}@localhost:{port[scheme]}/INBOX"

    def _session(self) -> imaplib.IMAP4:
        conn = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=10)
        conn.starttls()  # the test trusts the certificate through SSL_CERT_FILE
        conn.login(USER, PASSWORD)
        return conn

    def deliver(self, raw: bytes) -> None:
        """Put a message into the INBOX, as a mail server's delivery would."""
        conn = self._session()
        try:
            conn.append("INBOX", None, None, raw)
        finally:
            conn.logout()

    def count(self, folder: str) -> int:
        """Return how many messages a folder holds (0 when it does not exist)."""
        conn = self._session()
        try:
            status, data = conn.select(f'"{folder}"', readonly=True)
            return int(data[0] or 0) if status == "OK" else 0
        finally:
            conn.logout()

    def stop(self) -> None:
        """Stop Dovecot and remove its folder."""
        self.proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()
        shutil.rmtree(self.root, ignore_errors=True)
