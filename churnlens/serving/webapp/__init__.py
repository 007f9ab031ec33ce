"""The web app for marketers: campaign lists, search and each customer's card, in French and English.

``churnlens serve --campaign PATH`` mounts it beside the API (:func:`build_webapp`,
:func:`~churnlens.serving.webapp.app.mount_webapp`). Pages are rendered on the server from
the Jinja2 templates of :mod:`churnlens.serving.render` (the card's templates included) and
need no script and nothing from another site.
"""

from __future__ import annotations

from pathlib import Path

from churnlens.config import ScoringSettings
from churnlens.serving.loader import LoadedModel
from churnlens.serving.webapp.app import WebApp, mount_webapp
from churnlens.serving.webapp.auth import SESSION_HOURS, Access
from churnlens.serving.webapp.campaigns import CampaignStore, find_campaigns
from churnlens.serving.webapp.customers import DataStore


def build_webapp(
    campaign: str | Path,
    *,
    loaded: LoadedModel,
    settings: ScoringSettings,
    token: str | None,
    data_dir: str | Path | None = None,
    columns: dict[str, dict[str, str]] | None = None,
    session_hours: float = SESSION_HOURS,
    preload: bool = True,
) -> WebApp:
    """The web app's state: campaigns at ``campaign``, their data loaded once, the served model.

    Parameters
    ----------
    campaign : str or Path
        A campaign file written by ``churnlens score`` or a folder of them.
    loaded : LoadedModel
        The model the API serves (cards are computed with it).
    settings : ScoringSettings
        ``[serving]``: default language, currency, reasons.
    token : str or None
        The API token; when set, pages need a login with it.
    data_dir : str or Path, optional
        The customers' tables (``--data``); default the directory each campaign's summary records.
    columns : dict, optional
        ``[columns.<table>]`` mappings for reading the tables.
    session_hours : float
        Life of a login session.
    preload : bool
        Load the newest campaign and the data of every campaign now (else on first use).
    """
    import json

    store = CampaignStore(campaign)
    data = DataStore(columns, Path(data_dir) if data_dir is not None else None)
    if preload:
        refs = store.refs()
        if refs:
            store.get(refs[0].name)
        data.preload([json.loads(r.summary.read_text(encoding="utf-8")) for r in refs])
    return WebApp(
        campaigns=store, data=data, loaded=loaded, settings=settings,
        access=Access(token, max_age=session_hours * 3600),
    )  # fmt: skip


__all__ = ["WebApp", "build_webapp", "find_campaigns", "mount_webapp"]
