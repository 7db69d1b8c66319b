"""Action profiles and action selectors (BMv2 ``ActionProfile``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import DuplicateEntry, EntryNotFound, InvalidEntry, TableFull
from .tables import ActionCall, Generation


class ActionProfile:
    """Members (action calls) and, with a selector, groups of members.

    Members get BMv2-style handles (the lowest free integer) and a group picks
    its member as ``hash % group size`` over its members ordered by handle, as
    BMv2's default group selector does.
    """

    def __init__(self, name: str, max_size: int,
                 selector: Callable[[Any], int] | None = None,
                 generation: Generation | None = None) -> None:
        self.name = name
        self.max_size = max_size
        self.selector = selector
        self.members: dict[int, ActionCall] = {}
        self.handles: dict[int, int] = {}
        self.groups: dict[int, list[int]] = {}
        self.group_max: dict[int, int] = {}
        self.generation = generation if generation is not None else Generation()

    def _free_handle(self) -> int:
        used = set(self.handles.values())
        handle = 0
        while handle in used:
            handle += 1
        return handle

    def add_member(self, member_id: int, call: ActionCall) -> None:
        if member_id in self.members:
            raise DuplicateEntry(f"action profile '{self.name}' already has member {member_id}")
        if len(self.members) >= self.max_size:
            raise TableFull(f"action profile '{self.name}' is full ({self.max_size} members)")
        self.members[member_id] = call
        self.handles[member_id] = self._free_handle()
        self.generation.bump()

    def modify_member(self, member_id: int, call: ActionCall) -> None:
        if member_id not in self.members:
            raise EntryNotFound(f"action profile '{self.name}' has no member {member_id}")
        self.members[member_id] = call
        self.generation.bump()

    def delete_member(self, member_id: int) -> None:
        if member_id not in self.members:
            raise EntryNotFound(f"action profile '{self.name}' has no member {member_id}")
        if any(member_id in members for members in self.groups.values()):
            raise InvalidEntry(f"member {member_id} is still used by a group")
        del self.members[member_id]
        del self.handles[member_id]
        self.generation.bump()

    def set_group(self, group_id: int, members: list[int], max_size: int = 0,
                  create: bool = False) -> None:
        if self.selector is None:
            raise InvalidEntry(f"action profile '{self.name}' has no selector: no groups")
        if create and group_id in self.groups:
            raise DuplicateEntry(f"action profile '{self.name}' already has group {group_id}")
        if not create and group_id not in self.groups:
            raise EntryNotFound(f"action profile '{self.name}' has no group {group_id}")
        for member in members:
            if member not in self.members:
                raise InvalidEntry(f"group {group_id}: unknown member {member}")
        if max_size and len(members) > max_size:
            raise InvalidEntry(f"group {group_id} has more than {max_size} members")
        self.groups[group_id] = sorted(set(members), key=self.handles.__getitem__)
        self.group_max[group_id] = max_size
        self.generation.bump()

    def delete_group(self, group_id: int) -> None:
        if group_id not in self.groups:
            raise EntryNotFound(f"action profile '{self.name}' has no group {group_id}")
        del self.groups[group_id]
        self.group_max.pop(group_id, None)
        self.generation.bump()

    def check_reference(self, member: int | None, group: int | None) -> None:
        if member is not None and member not in self.members:
            raise InvalidEntry(f"action profile '{self.name}' has no member {member}")
        if group is not None and group not in self.groups:
            raise InvalidEntry(f"action profile '{self.name}' has no group {group}")

    def resolve(self, entry: Any, p: Any) -> ActionCall | None:
        """The action call of an indirect entry; None for an empty group."""
        if entry.member is not None:
            return self.members[entry.member]
        members = self.groups[entry.group]
        if not members:
            return None
        return self.members[members[self.selector(p) % len(members)]]

    def clear(self) -> None:
        self.members.clear()
        self.handles.clear()
        self.groups.clear()
        self.group_max.clear()
        self.generation.bump()
