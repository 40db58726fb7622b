"""Params of the client's commands, validated and built (no state, no frames).

Each builder checks the caller's input with ``_validate`` (``LocalProtocolError`` on
anything invalid) and returns the params object of the request; the connection adds the
ids and queues the frame. Nothing here holds state or reads a clock.
"""

from __future__ import annotations

from typing import Any

from . import _validate as validate
from ._errors import LocalProtocolError
from ._wire import JSONObject

#: The controls of a running play (``calling.play.<control>``).
PLAY_CONTROLS = frozenset({"pause", "resume", "stop", "volume"})


def dial_params(
    devices: Any,
    *,
    max_duration: int | None,
    region: str | None,
    node_id: str | None,
    max_price_per_minute: float | None,
) -> JSONObject:
    """``calling.dial`` params without the tag (the caller sets ``params["tag"]``)."""
    params: JSONObject = {"tag": "", "devices": validate.devices_plan(devices)}
    if max_duration is not None:
        params["max_duration"] = validate.positive_int("max_duration", max_duration)
    if region is not None:
        params["region"] = validate.non_empty_str("region", region)
    if node_id is not None:
        params["node_id"] = validate.non_empty_str("node_id", node_id)
    if max_price_per_minute is not None:
        params["max_price_per_minute"] = validate.positive_number(
            "max_price_per_minute", max_price_per_minute
        )
    return params


def play_params(
    media: Any, *, volume: float | None, direction: str | None, loop: int | None
) -> JSONObject:
    """``calling.play`` params without ids (the caller adds the call's and ``control_id``)."""
    params: JSONObject = {"play": validate.media_list(media)}
    if volume is not None:
        params["volume"] = validate.volume("volume", volume)
    if direction is not None:
        params["direction"] = validate.non_empty_str("direction", direction)
    if loop is not None:
        params["loop"] = validate.non_negative_int("loop", loop)  # 0: play forever
    return params


def play_control_params(control_id: str, action: str, volume: float | None) -> JSONObject:
    if action not in PLAY_CONTROLS:
        raise LocalProtocolError(f"action: must be one of {sorted(PLAY_CONTROLS)}")
    params: JSONObject = {"control_id": validate.non_empty_str("control_id", control_id)}
    if action == "volume":
        params["volume"] = validate.volume("volume", volume)
    return params


def auth_params(project: str | None, token: str | None, jwt_token: str | None) -> JSONObject:
    """The ``authentication`` object: a JWT, or a project and its token.

    A project id may come with a JWT (code ported from the official SDK passes both): it
    is checked but not sent, as the official SDK sends ``{"jwt_token": J}`` alone (the
    JWT names its project). A token with a JWT is refused: which one was meant?
    """
    if jwt_token is not None:
        if token is not None:
            raise LocalProtocolError("pass either jwt_token or project+token, not both")
        if project is not None:
            validate.non_empty_str("project", project)
        return {"jwt_token": validate.secret("jwt_token", jwt_token)}
    validate.non_empty_str("project", project)
    validate.secret("token", token)
    return {"project": project, "token": token}


def optional_positive(where: str, value: float | None) -> float | None:
    return None if value is None else validate.positive_number(where, value)
