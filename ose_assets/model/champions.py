"""Champion history: which registered version was champion for an as-of date (what a replay scores with).

The `champion` alias only says who is champion now. Where the alias moves (registry.log_and_register),
record_champion tags the version with the as-of date it became champion for (`champion_as_of`, the as-of
of the training run that promoted it) and the UTC time the alias moved (`champion_set_at`). Versions
promoted before these tags existed are read from their `training_as_of` and `promotion_decision` tags.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

CHAMPION_AS_OF_TAG = "champion_as_of"
CHAMPION_SET_AT_TAG = "champion_set_at"


def record_champion(client, name: str, version: str, as_of: str | None) -> None:
    """Tag `version` as champion from `as_of` on (call right after moving the alias to it)."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(timespec="seconds")
    if as_of:
        client.set_model_version_tag(name, version, CHAMPION_AS_OF_TAG, as_of)
    client.set_model_version_tag(name, version, CHAMPION_SET_AT_TAG, now)


@dataclass(frozen=True)
class ChampionChoice:
    """The version that scores an as-of date, and why (printed in the run summary)."""

    version: str
    champion_as_of: dt.date
    reason: str
    # True when the version was champion only after the date: its training saw later outcomes.
    later_than_date: bool


def champion_history(client, name: str) -> list[tuple[dt.date, str, str]]:
    """(champion from as-of, alias set at, version) of every version ever champion, oldest first."""
    history = []
    for version in client.search_model_versions(f"name = '{name}'"):
        tags = version.tags or {}
        as_of = tags.get(CHAMPION_AS_OF_TAG) or (
            tags.get("training_as_of") if tags.get("promotion_decision") == "promoted" else None
        )
        if as_of:
            set_at = tags.get(CHAMPION_SET_AT_TAG) or f"{int(version.creation_timestamp or 0):020d}"
            history.append((dt.date.fromisoformat(as_of), set_at, str(version.version)))
    return sorted(history, key=lambda row: (row[0], row[1], int(row[2])))


def champion_at(client, name: str, as_of: dt.date) -> ChampionChoice | None:
    """The version that was champion for `as_of`: the last one made champion for a date on or before it.

    Before any champion's date, the earliest champion scores it and the choice says so (its training
    saw outcomes after `as_of`: such scores are in-sample). None when no version was ever champion.
    """
    history = champion_history(client, name)
    if not history:
        return None
    earlier = [row for row in history if row[0] <= as_of]
    if earlier:
        when, _, version = earlier[-1]
        reason = f"champion on {as_of}: v{version} (champion since {when})"
        return ChampionChoice(version, when, reason, False)
    when, _, version = history[0]
    return ChampionChoice(
        version,
        when,
        f"no champion existed on {as_of}: the earliest, v{version} (champion since {when}), scores it; "
        "its training saw later outcomes",
        True,
    )
