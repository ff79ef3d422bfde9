"""Who did what, as Bond says, against the visitors' ground truth.

Each event is joined to Bond's identity map (engine/identity_map.py: every browser's time
ranges and the person each belongs to now) the way a warehouse joins it, and given one outcome
measured against the person who really did it:

- `own`: a Bond person holding this person's identifiers (user id or email) and nobody else's;
- `anonymous`: an anonymous Bond person (for someone who never identified, the right answer);
- `wrong_person`: a Bond person holding only other people's identifiers, or any identified
  person for someone who never identified: someone else's activity on a record, the serious
  error;
- `merged`: a Bond person holding this person's identifiers and someone else's too;
- `missing`: no range of the map holds the event (it never reached the graph).

An event sent under another person's user id (a site that logs out without reset()) is scored
apart, against the person it names, as the graph can only follow what it is told.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from bond.simulate.visitors import CLAIMED, Person, Scenario, Sent
from engine.store import MIN_TS

OUTCOMES = ("own", "anonymous", "wrong_person", "merged", "missing")


class Attributed(NamedTuple):
    person: str  # who really did it
    named: str | None  # whose user id it carries, when not its own
    bond_person: int | None  # the Bond person it belongs to now; None when not in the map
    identified: bool  # whether that Bond person is identified


def attribute(events: Iterable[Sent], rows: Iterable[dict[str, Any]]) -> list[Attributed]:
    """Each event's Bond person, read from the identity map's `rows`."""
    # A stream's rows partition all time: the range an event falls in is the last one that
    # starts at or before it.
    ranges: dict[tuple[str, str], list[tuple[int, int, bool]]] = defaultdict(list)
    for row in rows:
        key = ("a", row["anonymous_id"]) if row["anonymous_id"] else ("u", row["user_id"])
        start = row["from_ts"] if row["from_ts"] is not None else MIN_TS
        ranges[key].append((start, row["person_id"], row["identified"]))
    starts = {}
    for key, stream in ranges.items():
        stream.sort(key=lambda r: r[0])
        starts[key] = [r[0] for r in stream]
    out = []
    for sent in events:
        anonymous_id = sent.message.get("anonymousId")
        key = ("a", anonymous_id) if anonymous_id else ("u", sent.message["userId"])
        index = bisect_right(starts.get(key, []), sent.at_ms) - 1
        if index < 0:
            out.append(Attributed(sent.person, sent.named, None, False))
        else:
            _, person, identified = ranges[key][index]
            out.append(Attributed(sent.person, sent.named, person, identified))
    return out


def score(
    people: Mapping[str, Person],
    attributed: Sequence[Attributed],
    records: Mapping[str, set[int]],
) -> dict[str, Any]:
    """The canary's numbers. `records`: each person's Bond persons, those holding one of their
    identifiers (none for someone who never identified)."""
    holders: dict[int, set[str]] = defaultdict(set)
    for name, bond_persons in records.items():
        for bond_person in bond_persons:
            holders[bond_person].add(name)

    by_scenario: dict[str, Counter[str]] = {s.value: Counter() for s in Scenario}
    identified, never, foreign = Counter[str](), Counter[str](), Counter[str]()
    bond_persons_of: dict[str, set[int]] = defaultdict(set)
    people_on: dict[int, set[str]] = defaultdict(set)
    for event in attributed:
        if event.named is not None:
            foreign[_outcome(event.named, event, holders)] += 1
            continue
        outcome = _outcome(event.person, event, holders)
        person = people[event.person]
        by_scenario[person.scenario][outcome] += 1
        (identified if person.identifies else never)[outcome] += 1
        if event.bond_person is not None:
            bond_persons_of[event.person].add(event.bond_person)
            people_on[event.bond_person].add(event.person)

    counted = Counter(p.scenario.value for p in people.values())
    identifying = [p for p in people.values() if p.identifies]
    return {
        "events": len(attributed),
        "identified_people": _shares(identified, len(identifying)),
        "never_identified": _shares(never, len(people) - len(identifying)),
        "by_scenario": {
            scenario: {
                **_shares(outcomes, counted[scenario]),
                "claimed": Scenario(scenario) in CLAIMED,
            }
            for scenario, outcomes in by_scenario.items()
            if counted[scenario]
        },
        "under_another_user_id": _shares(foreign, None),
        "fragmentation": {
            # Bond persons holding one person's identifiers: more than one is a split record.
            "records_per_identified_person": _histogram(
                len(records.get(p.name, ())) for p in identifying
            ),
            # Bond persons one person's events landed on (a device never identified is one).
            "bond_persons_per_person": _histogram(len(v) for v in bond_persons_of.values()),
        },
        "merges": {
            "true_persons_per_bond_person": _histogram(len(v) for v in people_on.values()),
            "records_holding_several_people": sum(len(v) > 1 for v in holders.values()),
        },
    }


def _outcome(target: str, event: Attributed, holders: Mapping[int, set[str]]) -> str:
    if event.bond_person is None:
        return "missing"
    holding = holders.get(event.bond_person, set())
    if target in holding:
        return "own" if len(holding) == 1 else "merged"
    return "wrong_person" if holding or event.identified else "anonymous"


def _shares(outcomes: Counter[str], people: int | None) -> dict[str, Any]:
    events = sum(outcomes.values())
    out: dict[str, Any] = {} if people is None else {"people": people}
    out["events"] = events
    for outcome in OUTCOMES:
        out[outcome] = outcomes[outcome]
        out[f"{outcome}_share"] = round(outcomes[outcome] / events, 4) if events else None
    return out


def _histogram(values: Iterable[int]) -> dict[str, int]:
    counts = Counter(values)
    return {str(k): counts[k] for k in sorted(counts)}
