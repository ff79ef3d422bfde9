"""The identity rules: which person each event belongs to, and when persons join.

- identify (user id and/or traits.email), and any event carrying a user id, link the event's
  browser to that person; an anonymous person is folded into it with its whole history;
- alias(previousId, userId) links the previous id (a user id or an anonymous id) to the user;
- a client call never merges two identified persons. When a second identified person shows up
  on a browser (a shared computer without reset()), the browser's time range splits at that
  event: the earlier events stay with the first person, later ones belong to the second, up to
  the next event that named the first again (a login that arrives late takes only its own
  stretch, never events that say whose they are);
- placeholder ids never reach here (the collector stores cleaned ids; emails are normalised);
- a person holds at most `max_user_ids` user ids, so one noisy id cannot absorb everyone.
Every refusal is recorded as an IdentityChange with a stable reason code.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from bond.ids import clean_id, normalize_email
from engine.hooks import ChangeKind, IdentityChange
from engine.store import Browser, IdentityStore, Person, Segment, anonymous_key, user_key


class Refusal(StrEnum):
    # A second identified person on a browser: kept apart, the browser is theirs from then on.
    SHARED_BROWSER = "shared_browser"
    # An alias between two identified persons.
    IDENTIFIED_PERSONS = "identified_persons_not_merged"
    # An identify whose user id and email belong to two different persons; the user id wins.
    EMAIL_OF_OTHER_PERSON = "email_of_other_person"
    MAX_USER_IDS = "max_user_ids"


class IdentityGraph:
    def __init__(self, store: IdentityStore, *, max_user_ids: int) -> None:
        self.store = store
        self.max_user_ids = max_user_ids
        self.changes: list[IdentityChange] = []

    def apply(
        self,
        seq: int,
        type_: str,
        anonymous_id: str | None,
        user_id: str | None,
        timestamp: int,
        traits: dict[str, Any],
        previous_id: object = None,
    ) -> tuple[Browser, Person, bool]:
        """Apply one event; returns its browser, the person owning it now, and whether the
        event named that person (a user id or an email)."""
        store = self.store
        email = normalize_email(traits.get("email")) if type_ == "identify" else None
        if type_ == "alias" and user_id is not None:
            previous = clean_id(previous_id)
            if previous is not None and previous != user_id:
                self._alias(previous, user_id, timestamp, seq)
        key = anonymous_key(anonymous_id) if anonymous_id else user_key(user_id or "")
        browser = store.browsers.get(key) or self._browser(key, user_id, email)
        segment = browser.segment_at(timestamp)
        claims = user_id is not None or email is not None
        if claims:
            segment = self._claim(browser, segment, user_id, email, timestamp, seq)
        person = store.persons.get(segment.person_id) or store.person(segment.person_id)
        person.event_count += 1
        person.saw(timestamp)
        if type_ == "identify" and traits:
            person.set_traits(traits, timestamp)
            store.changed_person(person)
        else:
            store.dirty_persons.add(person.id)  # only its counters moved
        return browser, person, claims

    def place(self, anonymous_id: str, timestamp: int) -> tuple[Browser, Person]:
        """Apply an event that claims no identity; returns its browser and the person owning it.

        Most events are these, so this is `apply` without the steps that cannot happen to them.
        """
        store = self.store
        key = "a:" + anonymous_id  # anonymous_key, inline on the hottest path
        browser = store.browsers.get(key) or self._browser(key, None, None)
        segments = browser.segments
        owner = (segments[0] if len(segments) == 1 else browser.segment_at(timestamp)).person_id
        person = store.persons.get(owner) or store.person(owner)
        person.event_count += 1
        first, last = person.first_seen, person.last_seen
        if first is None or timestamp < first:
            person.first_seen = timestamp
        if last is None or timestamp > last:
            person.last_seen = timestamp
        store.dirty_persons.add(owner)
        return browser, person

    def _browser(self, key: str, user_id: str | None, email: str | None) -> Browser:
        browser = self.store.browser(key)
        if browser is not None:
            return browser
        # A new browser whose first event names a known person starts as theirs, rather than
        # as an anonymous person merged away a moment later.
        owner = (self.store.person_of("user_id", user_id) if user_id else None) or (
            self.store.person_of("email", email) if email else None
        )
        if owner is None:
            owner = self.store.new_person().id
        return self.store.new_browser(key, owner)

    def _claim(
        self,
        browser: Browser,
        segment: Segment,
        user_id: str | None,
        email: str | None,
        ts: int,
        seq: int,
    ) -> Segment:
        store = self.store
        current = store.person(segment.person_id)
        by_user = store.person_of("user_id", user_id) if user_id else None
        by_email = store.person_of("email", email) if email else None
        if by_user is not None and by_email is not None and by_user != by_email:
            self._refuse(Refusal.EMAIL_OF_OTHER_PERSON, by_user, by_email, ts, seq)
            email, by_email = None, None
        target = by_user if by_user is not None else by_email

        if target is None:
            if not current.identified:
                self._attach(current, user_id, email, ts, seq)
                self._record("identified", current, None, current.event_count, 1, ts, seq)
                return segment
            if (user_id is None or not current.user_ids) and (email is None or not current.emails):
                self._attach(current, user_id, email, ts, seq)
                return segment
            newcomer = store.new_person()
            self._attach(newcomer, user_id, email, ts, seq)
            self._refuse(Refusal.SHARED_BROWSER, newcomer.id, current.id, ts, seq)
            return self._split(browser, segment, ts, newcomer)

        owner = store.person(target)
        if owner.id != current.id:
            if not current.identified:
                self._merge(current, owner, "merged", ts, seq)
            else:
                self._refuse(Refusal.SHARED_BROWSER, owner.id, current.id, ts, seq)
                segment = self._split(browser, segment, ts, owner)
        self._attach(owner, user_id, email, ts, seq)
        return segment

    def _alias(self, previous: str, user_id: str, ts: int, seq: int) -> None:
        store = self.store
        previous_person = store.person_of("user_id", previous)
        if previous_person is None:
            browser = self._browser(anonymous_key(previous), None, None)
            previous_person = browser.segment_at(ts).person_id
        linked = store.person(previous_person)
        target = store.person_of("user_id", user_id)
        if target is None:
            stitched = 0 if linked.identified else linked.event_count
            if self._attach(linked, user_id, None, ts, seq):
                self._record("aliased", linked, None, stitched, 0, ts, seq)
        elif target != linked.id:
            owner = store.person(target)
            if linked.identified:
                self._refuse(Refusal.IDENTIFIED_PERSONS, owner.id, linked.id, ts, seq)
            else:
                self._merge(linked, owner, "aliased", ts, seq)

    def _attach(
        self, person: Person, user_id: str | None, email: str | None, ts: int, seq: int
    ) -> bool:
        """Add new identifiers to `person`; False when the user id limit refused one."""
        attached = True
        if user_id is not None and user_id not in person.user_ids:
            if len(person.user_ids) >= self.max_user_ids:
                self._refuse(Refusal.MAX_USER_IDS, person.id, None, ts, seq)
                attached = False
            else:
                self.store.add_identifier("user_id", user_id, person, ts)
        if email is not None and email not in person.emails:
            self.store.add_identifier("email", email, person, ts)
        return attached

    def _merge(self, anonymous: Person, owner: Person, kind: ChangeKind, ts: int, seq: int) -> None:
        """Fold an anonymous person into `owner`: its segments change hands, no event row moves."""
        store = self.store
        segments = store.segments_of(anonymous.id)
        for segment in segments:
            segment.person_id = owner.id
            store.changed_segment(segment)
        owner.event_count += anonymous.event_count
        for seen in (anonymous.first_seen, anonymous.last_seen):
            if seen is not None:
                owner.saw(seen)
        for key, (value, at) in anonymous.traits.items():
            owner.set_traits({key: value}, at)
        anonymous.merged_into = owner.id
        store.changed_person(anonymous)
        store.changed_person(owner)
        browsers = len({s.browser_id for s in segments})
        self._record(kind, owner, anonymous.id, anonymous.event_count, browsers, ts, seq)

    def _split(self, browser: Browser, segment: Segment, ts: int, newcomer: Person) -> Segment:
        """Hand `browser` to `newcomer` from `ts` until the segment's owner is named again.

        Earlier events stay with their person, and so do the events from the next one that
        named them on: on a shared computer a login can arrive after the other person's later
        events (a retry queue, a tab left open), and must not take those.
        """
        store = self.store
        previous = store.person(segment.person_id)
        end = store.next_claim(browser.id, ts, segment.end_ts, newcomer.id)
        moved, first, last = store.range_stats(browser.id, ts, end)
        previous.event_count -= moved
        newcomer.event_count += moved
        for seen in (first, last):
            if seen is not None:
                newcomer.saw(seen)
        if end < segment.end_ts:
            store.new_segment(browser, end, segment.end_ts, previous.id)
            segment.end_ts = end
        if ts <= segment.start_ts:
            segment.person_id = newcomer.id
            handed = segment
        else:
            handed = store.new_segment(browser, ts, segment.end_ts, newcomer.id)
            segment.end_ts = ts
        store.changed_segment(segment)
        if moved:
            previous.first_seen, previous.last_seen = store.seen_span(previous.id)
        store.changed_person(previous)
        store.changed_person(newcomer)
        return handed

    def _refuse(
        self, reason: Refusal, person_id: int, other: int | None, ts: int, seq: int
    ) -> None:
        seen = self.store.person(person_id).first_seen
        # A newcomer refused a shared browser has no events counted yet: seen first now.
        first_seen = ts if seen is None else min(seen, ts)
        self.changes.append(
            IdentityChange("refused", person_id, other, reason.value, 0, 0, first_seen, ts, seq)
        )

    def _record(
        self,
        kind: ChangeKind,
        person: Person,
        other: int | None,
        stitched: int,
        browsers: int,
        ts: int,
        seq: int,
    ) -> None:
        first_seen = ts if person.first_seen is None else min(person.first_seen, ts)
        self.changes.append(
            IdentityChange(kind, person.id, other, None, stitched, browsers, first_seen, ts, seq)
        )
