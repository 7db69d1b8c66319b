"""Action profile members and groups (action selectors), with PI's checks and words."""

from __future__ import annotations

from typing import Any

from p4protos import p4runtime_pb2
from p4switch.engine import DuplicateEntry, EntryNotFound, InvalidEntry, TableFull

from .config import PipelineConfig, ProfileInfo
from .errors import (
    INVALID_ID,
    already_exists,
    exhausted,
    invalid,
    not_found,
    unimplemented,
)
from .readsink import ReadSink
from .table_entries import decode_params
from .table_read import encode_call

Update = p4runtime_pb2.Update


def _profile(config: PipelineConfig, profile_id: int) -> ProfileInfo:
    info = config.profiles.get(profile_id)
    if info is None:
        raise invalid(INVALID_ID)
    return info


def _check_type(update_type: int) -> None:
    if update_type == Update.UNSPECIFIED:
        raise invalid("Update type is not set")
    if update_type not in (Update.INSERT, Update.MODIFY, Update.DELETE):
        raise invalid("Invalid update type")


def _member_call(config: PipelineConfig, info: ProfileInfo, action: Any) -> Any:
    """The engine call of a member's action: an action of the profile's tables."""
    if action.action_id not in config.actions:
        raise invalid(INVALID_ID)
    for table_id in info.table_ids:
        allowed = config.tables[table_id].actions.get(action.action_id)
        if allowed is not None:
            return decode_params(allowed, action)
    raise invalid("Invalid action for action profile")


def write_profile_member(config: PipelineConfig, update_type: int, member: Any) -> None:
    info = _profile(config, member.action_profile_id)
    _check_type(update_type)
    profile = info.profile
    member_id = member.member_id
    try:
        if update_type == Update.DELETE:
            if member_id not in profile.members:
                raise not_found(f"Member id does not exist: {member_id}")
            profile.delete_member(member_id)
            return
        call = _member_call(config, info, member.action)
        if update_type == Update.INSERT:
            if member_id in profile.members:
                raise already_exists(f"Duplicate member id: {member_id}")
            profile.add_member(member_id, call)
        else:
            if member_id not in profile.members:
                raise not_found(f"Member id does not exist: {member_id}")
            profile.modify_member(member_id, call)
    except DuplicateEntry as exc:
        raise already_exists(str(exc)) from exc
    except EntryNotFound as exc:
        raise not_found(str(exc)) from exc
    except TableFull as exc:
        raise exhausted(str(exc)) from exc
    except InvalidEntry as exc:
        raise invalid(str(exc)) from exc


def _group_members(info: ProfileInfo, group: Any, max_size: int) -> list[int]:
    """The member ids of a group message, checked in PI's order."""
    if any(member.weight <= 0 for member in group.members):
        raise invalid("Member weight must be a positive integer value")
    if max_size and sum(member.weight for member in group.members) > max_size:
        raise exhausted("Sum of member weights exceeds maximum group size")
    members: list[int] = []
    for member in group.members:
        if member.member_id not in info.profile.members:
            raise not_found(f"Member id does not exist: {member.member_id}")
        if member.member_id in members:
            raise invalid(f"Duplicate member id {member.member_id} for group "
                          f"{group.group_id}, use weights instead")
        members.append(member.member_id)
    if any(member.weight != 1 for member in group.members):
        raise unimplemented("Member weights other than 1 are not supported by this switch")
    return members


def write_profile_group(config: PipelineConfig, update_type: int, group: Any) -> None:
    info = _profile(config, group.action_profile_id)
    _check_type(update_type)
    profile = info.profile
    group_id = group.group_id
    try:
        if update_type == Update.DELETE:
            if group_id not in profile.groups:
                raise not_found(f"Group id does not exist: {group_id}")
            profile.delete_group(group_id)
            return
        if update_type == Update.INSERT:
            if group.max_size < 0:
                raise invalid("Group max_size cannot be less than 0")
            if info.max_group_size and group.max_size > info.max_group_size:
                raise invalid("Group max_size cannot exceed static max_group_size "
                              "(from P4Info)")
            if group_id in profile.groups:
                raise already_exists(f"Duplicate group id: {group_id}")
            max_size = group.max_size or info.max_group_size
        else:
            if group_id not in profile.groups:
                raise not_found(f"Group id does not exist: {group_id}")
            current = profile.group_max.get(group_id, 0)
            if group.max_size and group.max_size != current:
                raise invalid("Cannot change group max_size after group creation")
            max_size = current
        members = _group_members(info, group, max_size)
        profile.set_group(group_id, members, max_size, create=update_type == Update.INSERT)
    except DuplicateEntry as exc:
        raise already_exists(str(exc)) from exc
    except EntryNotFound as exc:
        raise not_found(str(exc)) from exc
    except InvalidEntry as exc:
        raise invalid(str(exc)) from exc


def read_profile_members(config: PipelineConfig, request: Any, sink: ReadSink) -> None:
    infos = [_profile(config, request.action_profile_id)] if request.action_profile_id \
        else list(config.profiles.values())
    for info in infos:
        if request.member_id and request.member_id not in info.profile.members:
            raise not_found(f"Member id does not exist: {request.member_id}")
        for member_id, call in sorted(info.profile.members.items()):
            if request.member_id and member_id != request.member_id:
                continue
            member = sink.add().action_profile_member
            member.action_profile_id, member.member_id = info.id, member_id
            holder = p4runtime_pb2.TableEntry()
            table = next(config.tables[t] for t in info.table_ids
                         if call.action.name in config.tables[t].action_ids)
            encode_call(config, table, call, holder)
            member.action.CopyFrom(holder.action.action)


def read_profile_groups(config: PipelineConfig, request: Any, sink: ReadSink) -> None:
    infos = [_profile(config, request.action_profile_id)] if request.action_profile_id \
        else list(config.profiles.values())
    for info in infos:
        if request.group_id and request.group_id not in info.profile.groups:
            raise not_found(f"Group id does not exist: {request.group_id}")
        for group_id, members in sorted(info.profile.groups.items()):
            if request.group_id and group_id != request.group_id:
                continue
            group = sink.add().action_profile_group
            group.action_profile_id, group.group_id = info.id, group_id
            group.max_size = info.profile.group_max.get(group_id, 0)
            for member_id in members:
                group.members.add(member_id=member_id, weight=1)
