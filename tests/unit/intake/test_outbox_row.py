"""Intake's outbox rows carry the same CloudEvent as the shared ``Tx.emit`` would."""

from __future__ import annotations

import json

from services.intake.handlers import outbox_row
from shared.events.envelope import decode, encode, kafka_headers
from shared.events.examples import example_event
from shared.outbox import Tx


def test_the_spliced_row_is_the_envelope_tx_emit_would_publish():
    tx = Tx(conn=None, topic_prefix="p_")  # type: ignore[arg-type]
    for event_type in ("case.registered", "case.merged", "report.rejected"):
        envelope = example_event(event_type)
        row = outbox_row(tx, envelope, envelope.data.model_dump_json())
        tx.emit(envelope)
        shared = tx.pending.pop()
        assert decode(row.value) == envelope
        assert json.loads(row.value) == json.loads(encode(envelope))
        assert (row.topic, row.key, row.headers, row.event_type) == (
            shared.topic,
            shared.key,
            kafka_headers(envelope),
            event_type,
        )
