"""`morningpost demo`: the sample issue to three demo readers, in a demo database."""

from __future__ import annotations

from typing import Any

from app.cli.base import START, _settings, _setup, cli, out
from app.cli.progress import _deliver


@cli.command(rich_help_panel=START)
def demo() -> None:
    """Send the sample issue to three demo readers, in a separate demo database under var/demo/.

    Nothing touches the real database or a real relay: the demo has its own SQLite file and
    always uses the capture mailer, which saves each message as an .eml file.
    """
    import secrets

    from app.db import session_scope
    from app.demo import load_demo
    from app.models import utcnow

    real = _settings()
    demo_dir = real.var_dir / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)
    overrides: dict[str, Any] = {
        "database_url": f"sqlite:///{(demo_dir / 'demo.db').as_posix()}",
        "var_dir": demo_dir,
        "smtp_url": None,  # the capture mailer: demo addresses never reach a relay
    }
    if not real.secret_keys:
        # The demo's own signing key, made quietly (the real one may not exist yet).
        key_file = demo_dir / "secret_key"
        if not key_file.exists():
            key_file.write_text(secrets.token_urlsafe(48) + "\n")
            key_file.chmod(0o600)
        overrides["secret_keys"] = [key_file.read_text().strip()]
    settings = real.model_copy(update=overrides)
    ctx = _setup(migrate=True, settings=settings, create=True)
    with session_scope(ctx.sessions) as session:
        issue_id, recipients = load_demo(session, ctx.renderer, utcnow())
    _deliver(ctx, [issue_id])
    outbox = settings.outbox_dir.resolve()
    out.print(
        f"issue {issue_id} sent to {recipients} demo readers: the messages are .eml files in "
        f"{outbox}\nTo browse the demo: MORNINGPOST_DATABASE_URL={settings.database_url} "
        f"MORNINGPOST_VAR_DIR={demo_dir} morningpost serve",
        highlight=False,
        soft_wrap=True,
    )
    ctx.close()
