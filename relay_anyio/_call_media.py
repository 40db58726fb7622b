"""The action verbs of a call, under the official SDK's names and keyword parameters.

Each method builds the verb's params in the nested wire form (no ids: the core adds them and
checks the params by the verb's rules, ``ConfigurationError`` before anything is sent) and
starts it through ``CallBase.begin``, which returns the handle once the server accepted it.
Extra keyword arguments go into the request as they are (the calling API grows).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from relay_proto import SendDigitsResult

from ._actions import (
    AIAction,
    CollectAction,
    DetectAction,
    FaxAction,
    OnCompleted,
    PayAction,
    PlayAction,
    RecordAction,
    StandaloneCollectAction,
    StreamAction,
    TapAction,
    TranscribeAction,
)
from ._call_base import CallBase
from ._errors import CallGoneError

__all__ = ["MediaCall"]

JSONObject = dict[str, Any]
Media = Sequence[Mapping[str, Any]]


def given(**fields: Any) -> JSONObject:
    """The fields that were given (not None)."""
    return {key: value for key, value in fields.items() if value is not None}


class MediaCall(CallBase):
    """Play, record, collect, detect, digits, tap, stream, fax, pay, transcribe, AI."""

    # -------------------------------------------------------------- play shortcuts

    async def play_tts(
        self,
        text: str,
        *,
        language: str | None = None,
        gender: str | None = None,
        voice: str | None = None,
        volume: float | None = None,
        on_completed: OnCompleted | None = None,
    ) -> PlayAction:
        tts = {"text": text, **given(language=language, gender=gender, voice=voice)}
        media = [{"type": "tts", "params": tts}]
        return await self.play(media, volume=volume, on_completed=on_completed)

    async def play_audio(
        self, url: str, *, volume: float | None = None, on_completed: OnCompleted | None = None
    ) -> PlayAction:
        media = [{"type": "audio", "params": {"url": url}}]
        return await self.play(media, volume=volume, on_completed=on_completed)

    async def play_silence(
        self, duration: float, *, on_completed: OnCompleted | None = None
    ) -> PlayAction:
        media = [{"type": "silence", "params": {"duration": duration}}]
        return await self.play(media, on_completed=on_completed)

    async def play_ringtone(
        self,
        name: str,
        *,
        duration: float | None = None,
        volume: float | None = None,
        on_completed: OnCompleted | None = None,
    ) -> PlayAction:
        media = [{"type": "ringtone", "params": {"name": name, **given(duration=duration)}}]
        return await self.play(media, volume=volume, on_completed=on_completed)

    # -------------------------------------------------------------- record

    async def record(
        self,
        audio: Mapping[str, Any] | None = None,
        *,
        control_id: str | None = None,
        on_completed: OnCompleted | None = None,
        **kwargs: Any,
    ) -> RecordAction:
        """Record the call; ``wait()`` gives a ``RecordResult`` (url, duration, size)."""
        params = {"record": {"audio": dict(audio or {})}, **kwargs}
        return await self.begin(RecordAction, "record", params, control_id, on_completed)

    # -------------------------------------------------------------- input

    async def play_and_collect(
        self,
        media: Media,
        collect: Mapping[str, Any],
        *,
        volume: float | None = None,
        control_id: str | None = None,
        on_completed: OnCompleted | None = None,
        **kwargs: Any,
    ) -> CollectAction:
        """Play ``media`` and collect digits or speech; ``wait()`` gives the final
        ``CollectResult`` (partial results update ``result`` meanwhile)."""
        params = {"play": list(media), "collect": dict(collect), **given(volume=volume)}
        params.update(kwargs)
        verb = "play_and_collect"
        return await self.begin(CollectAction, verb, params, control_id, on_completed)

    async def prompt_tts(
        self,
        text: str,
        collect: Mapping[str, Any],
        *,
        language: str | None = None,
        gender: str | None = None,
        voice: str | None = None,
        volume: float | None = None,
        on_completed: OnCompleted | None = None,
    ) -> CollectAction:
        tts = {"text": text, **given(language=language, gender=gender, voice=voice)}
        media = [{"type": "tts", "params": tts}]
        return await self.play_and_collect(media, collect, volume=volume, on_completed=on_completed)

    async def prompt_audio(
        self,
        url: str,
        collect: Mapping[str, Any],
        *,
        volume: float | None = None,
        on_completed: OnCompleted | None = None,
    ) -> CollectAction:
        media = [{"type": "audio", "params": {"url": url}}]
        return await self.play_and_collect(media, collect, volume=volume, on_completed=on_completed)

    async def collect(
        self,
        *,
        digits: Mapping[str, Any] | None = None,
        speech: Mapping[str, Any] | None = None,
        initial_timeout: float | None = None,
        partial_results: bool | None = None,
        continuous: bool | None = None,
        send_start_of_input: bool | None = None,
        start_input_timers: bool | None = None,
        control_id: str | None = None,
        on_completed: OnCompleted | None = None,
        **kwargs: Any,
    ) -> StandaloneCollectAction:
        """Collect digits or speech without a prompt; ``wait()`` gives a ``CollectResult``."""
        params = given(
            digits=None if digits is None else dict(digits),
            speech=None if speech is None else dict(speech),
            initial_timeout=initial_timeout,
            partial_results=partial_results,
            continuous=continuous,
            send_start_of_input=send_start_of_input,
            start_input_timers=start_input_timers,
        )
        params.update(kwargs)
        cls = StandaloneCollectAction
        return await self.begin(cls, "collect", params, control_id, on_completed)

    # -------------------------------------------------------------- detection

    async def detect(
        self,
        detect: Mapping[str, Any],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (the detector's, sent)
        control_id: str | None = None,
        on_completed: OnCompleted | None = None,
        **kwargs: Any,
    ) -> DetectAction:
        """Start a detector (``{"type": "machine"|"fax"|"digit", "params": {...}}``);
        ``wait()`` gives the first ``DetectResult``."""
        params = {"detect": dict(detect), **given(timeout=timeout), **kwargs}
        return await self.begin(DetectAction, "detect", params, control_id, on_completed)

    async def detect_answering_machine(
        self,
        *,
        initial_timeout: float | None = None,
        end_silence_timeout: float | None = None,
        machine_voice_threshold: float | None = None,
        machine_words_threshold: int | None = None,
        detect_interruptions: bool | None = None,
        detect_message_end: bool | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (the detector's, sent)
        on_completed: OnCompleted | None = None,
    ) -> DetectAction:
        params = given(
            initial_timeout=initial_timeout,
            end_silence_timeout=end_silence_timeout,
            machine_voice_threshold=machine_voice_threshold,
            machine_words_threshold=machine_words_threshold,
            detect_interruptions=detect_interruptions,
            detect_message_end=detect_message_end,
        )
        detect = {"type": "machine", "params": params}
        return await self.detect(detect, timeout=timeout, on_completed=on_completed)

    async def detect_fax(
        self,
        *,
        tone: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (the detector's, sent)
        on_completed: OnCompleted | None = None,
    ) -> DetectAction:
        detect = {"type": "fax", "params": given(tone=tone)}
        return await self.detect(detect, timeout=timeout, on_completed=on_completed)

    async def detect_digit(
        self,
        *,
        digits: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (the detector's, sent)
        on_completed: OnCompleted | None = None,
    ) -> DetectAction:
        detect = {"type": "digit", "params": given(digits=digits)}
        return await self.detect(detect, timeout=timeout, on_completed=on_completed)

    # -------------------------------------------------------------- DTMF

    async def send_digits(self, digits: str, *, control_id: str | None = None) -> SendDigitsResult:
        """Send DTMF ``digits`` and wait until they have been sent.

        Unlike the official SDK (which returns the reply at once), this returns the
        ``SendDigitsResult`` of the final ``calling.call.send_digits`` event (``state``
        ``finished`` or ``error``). Cancelling it once the server accepted the digits does
        not unsend them. Raises ``CallGoneError`` if the call ended first.
        """
        action = await self.start_action("send_digits", {"digits": digits}, control_id=control_id)
        result = await action.wait()
        if result.call_ended:
            raise CallGoneError("the call ended before the digits were sent", code=410)
        if isinstance(result, SendDigitsResult):
            return result
        return SendDigitsResult(verb=result.verb, state=result.state, params=result.params)

    # -------------------------------------------------------------- media out of the call

    async def tap(
        self,
        tap: Mapping[str, Any],
        device: Mapping[str, Any],
        *,
        control_id: str | None = None,
        on_completed: OnCompleted | None = None,
        **kwargs: Any,
    ) -> TapAction:
        """Tap the call's audio to an RTP or WebSocket ``device``; ``stop()`` ends it."""
        params = {"tap": dict(tap), "device": dict(device), **kwargs}
        return await self.begin(TapAction, "tap", params, control_id, on_completed)

    async def stream(
        self,
        url: str,
        *,
        name: str | None = None,
        codec: str | None = None,
        track: str | None = None,
        status_url: str | None = None,
        status_url_method: str | None = None,
        authorization_bearer_token: str | None = None,
        custom_parameters: Mapping[str, Any] | None = None,
        control_id: str | None = None,
        on_completed: OnCompleted | None = None,
        **kwargs: Any,
    ) -> StreamAction:
        params = {"url": url, **kwargs}
        params.update(
            given(
                name=name,
                codec=codec,
                track=track,
                status_url=status_url,
                status_url_method=status_url_method,
                authorization_bearer_token=authorization_bearer_token,
                custom_parameters=None if custom_parameters is None else dict(custom_parameters),
            )
        )
        return await self.begin(StreamAction, "stream", params, control_id, on_completed)

    async def transcribe(
        self,
        *,
        control_id: str | None = None,
        status_url: str | None = None,
        on_completed: OnCompleted | None = None,
        **kwargs: Any,
    ) -> TranscribeAction:
        params = {**given(status_url=status_url), **kwargs}
        cls = TranscribeAction
        return await self.begin(cls, "transcribe", params, control_id, on_completed)

    # -------------------------------------------------------------- fax, pay, AI

    async def send_fax(
        self,
        document: str,
        *,
        identity: str | None = None,
        header_info: str | None = None,
        control_id: str | None = None,
        on_completed: OnCompleted | None = None,
        **kwargs: Any,
    ) -> FaxAction:
        params = {"document": document, **given(identity=identity, header_info=header_info)}
        params.update(kwargs)
        return await self.begin(FaxAction, "send_fax", params, control_id, on_completed)

    async def receive_fax(
        self,
        *,
        control_id: str | None = None,
        on_completed: OnCompleted | None = None,
        **kwargs: Any,
    ) -> FaxAction:
        return await self.begin(FaxAction, "receive_fax", dict(kwargs), control_id, on_completed)

    async def pay(
        self,
        payment_connector_url: str,
        *,
        control_id: str | None = None,
        input_method: str | None = None,
        on_completed: OnCompleted | None = None,
        **kwargs: Any,
    ) -> PayAction:
        """Collect a payment. The official SDK's keywords (``status_url``,
        ``payment_method``, ``timeout``, ``charge_amount``, ``prompts``, ...) go into the
        request as they are; ``input_method`` is sent as ``input``."""
        params = {"payment_connector_url": payment_connector_url, **given(input=input_method)}
        params.update({key: value for key, value in kwargs.items() if value is not None})
        return await self.begin(PayAction, "pay", params, control_id, on_completed)

    async def ai(
        self,
        *,
        control_id: str | None = None,
        ai_params: Mapping[str, Any] | None = None,
        on_completed: OnCompleted | None = None,
        **kwargs: Any,
    ) -> AIAction:
        """Start an AI agent on the call. The official SDK's keywords (``agent``,
        ``prompt``, ``post_prompt``, ``SWAIG``, ``hints``, ...) go into the request as they
        are; ``ai_params`` is sent as ``params``."""
        params = {key: value for key, value in kwargs.items() if value is not None}
        if ai_params is not None:
            params["params"] = dict(ai_params)
        return await self.begin(AIAction, "ai", params, control_id, on_completed)
