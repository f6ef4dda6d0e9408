"""The load `optouts bench` runs while it times STOPs: sends as the mix's own log makes them, spread
over its persons and their phones, not piled on one phone."""

from __future__ import annotations

import json
import random
from collections import Counter

from schemas.codec import decode_messaging_event
from streams.devtools.bench import background_send
from streams.devtools.workload import SENDERS, generate, phones

PERSONS = 200


def test_a_background_send_goes_to_a_person_of_the_mix_at_the_phone_the_log_sends_them_to() -> None:
    in_the_log = {
        (event["person_id"], event["phone"])
        for event in generate(5000, PERSONS, seed=3)
        if event["type"] == "message.sent"
    }
    rng = random.Random(5)
    sends = [background_send(rng, phones(PERSONS)) for _ in range(2000)]

    assert {(send["person_id"], send["phone"]) for send in sends} <= in_the_log
    assert {send["sender"] for send in sends} <= set(SENDERS)


def test_the_background_is_spread_over_the_mix_s_phones() -> None:
    rng = random.Random(5)
    phone_counts = Counter(background_send(rng, phones(PERSONS))["phone"] for _ in range(2000))

    # A phone shared by two persons takes about twice its share; none takes much more than that.
    assert len(phone_counts) > PERSONS * 0.9
    assert max(phone_counts.values()) < 2000 / PERSONS * 4


def test_a_background_send_is_a_valid_message_sent() -> None:
    send = background_send(random.Random(1), phones(PERSONS))

    event = decode_messaging_event(json.dumps(send).encode(), region="US")

    assert event.type == "message.sent"
    assert event.person_id == send["person_id"]
