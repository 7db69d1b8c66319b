"""Random P4Runtime messages for the fuzz test, mostly plausible, often broken.

``Generator`` makes table updates over small value pools (so that inserts collide,
modifies and deletes hit and tables fill up) and breaks many of them: unknown ids,
wrong widths and match kinds, missing or duplicate fields, bad priorities, actions
and params, stray fields, spliced garbage bytes.  It also makes updates of other
entities, stream messages and mangled bytes.
"""

from __future__ import annotations

import contextlib
import random
from typing import Any

from fuzzmodel import (
    DEFAULT_ONLY,
    DELETE,
    INSERT,
    MF,
    MODIFY,
    TABLE_ONLY,
    Schema,
    TableAction,
    TableEntry,
    TableModel,
    TableSpec,
    canonical,
)
from google.protobuf.message import DecodeError

from p4runtime_lib.protos import p4runtime_pb2

SetRequest = p4runtime_pb2.SetForwardingPipelineConfigRequest
PRIMARY_HIGH = 1 << 63  # the fuzz's primary uses this election id (high); streams stay below
OTHER_KINDS = ["counter_entry", "meter_entry", "register_entry", "extern_entry",
               "direct_counter_entry", "direct_meter_entry", "value_set_entry", "digest_entry",
               "packet_replication_engine_entry"]


class Generator:
    """Random table updates over small pools of values; many broken on purpose."""

    def __init__(self, schema: Schema, model: TableModel, rng: random.Random) -> None:
        self.schema, self.model, self.rng = schema, model, rng
        self.tables = list(schema.tables.values())
        self.pools = {(t.id, f[0]): [self._match_value(f[1], f[2]) for _ in range(5)]
                      for t in self.tables for f in t.fields}

    def _match_value(self, width: int, kind: int) -> tuple[int, ...]:
        rng, top = self.rng, (1 << width) - 1
        if kind == MF.LPM:
            length = rng.randint(1, width)
            return rng.getrandbits(width) & (top ^ ((1 << (width - length)) - 1)), length
        if kind == MF.TERNARY:
            mask = rng.choice([top, rng.getrandbits(width) or 1])
            return rng.getrandbits(width) & mask, mask
        if kind == MF.RANGE:
            low, high = sorted((rng.getrandbits(width), rng.getrandbits(width)))
            return (low, high) if (low, high) != (0, top) else (1, top)
        return (rng.choice([0, 1, top, rng.getrandbits(width)]),)

    def encode(self, value: int, width: int) -> bytes:
        """``value`` as canonical, padded, over-padded or (zero) empty bytes."""
        roll = self.rng.random()
        if roll < 0.6:
            return canonical(value)
        if roll < 0.85:
            return value.to_bytes(max(1, -(-width // 8)), "big")
        if value == 0 and roll < 0.92:
            return b""
        return b"\x00" * self.rng.randint(1, 3) + canonical(value)

    def entry(self, table: TableSpec) -> Any:
        """A well-formed entry for ``table`` (an existing one, half the time)."""
        rng = self.rng
        existing = [e for k, e in self.model.entries.items() if k[0] == table.id]
        if existing and rng.random() < 0.5:
            out = TableEntry()
            out.CopyFrom(rng.choice(existing))
            self._reencode(out, table)
            if rng.random() < 0.5:
                out.action.CopyFrom(self.action(table))
            return out
        out = TableEntry(table_id=table.id)
        for field_id, width, kind in table.fields:
            if kind != MF.EXACT and rng.random() < 0.25:
                continue
            value = rng.choice(self.pools[table.id, field_id])
            field = out.match.add(field_id=field_id)
            encoded = [self.encode(v, width) for v in value]
            if kind == MF.EXACT:
                field.exact.value = encoded[0]
            elif kind == MF.LPM:
                field.lpm.value, field.lpm.prefix_len = encoded[0], value[1]
            elif kind == MF.TERNARY:
                field.ternary.value, field.ternary.mask = encoded
            elif kind == MF.RANGE:
                field.range.low, field.range.high = encoded
            else:
                field.optional.value = encoded[0]
        if table.needs_priority:
            out.priority = rng.choice([1, 2, 7])
        out.action.CopyFrom(self.action(table))
        if rng.random() < 0.1:
            out.controller_metadata = rng.getrandbits(64)
        if rng.random() < 0.1:
            out.metadata = rng.randbytes(rng.randint(1, 8))
        if table.idle and rng.random() < 0.3:
            out.idle_timeout_ns = rng.randint(1, 10**12)
        return out

    def _reencode(self, entry: Any, table: TableSpec) -> None:
        widths = {field_id: width for field_id, width, _ in table.fields}
        for field in entry.match:
            part = getattr(field, field.WhichOneof("field_match_type"))
            for name in ("value", "mask", "low", "high"):
                if hasattr(part, name):
                    value = int.from_bytes(getattr(part, name), "big")
                    setattr(part, name, self.encode(value, widths[field.field_id]))

    def action(self, table: TableSpec, default: bool = False) -> Any:
        """A direct action of ``table`` allowed in entries (or as default) with small params."""
        rng = self.rng
        banned = TABLE_ONLY if default else DEFAULT_ONLY
        choices = [a for a, scope in table.actions.items() if scope != banned]
        action_id = rng.choice(choices)
        out = TableAction()
        out.action.action_id = action_id
        for param_id, width in self.schema.actions[action_id]:
            value = rng.choice([0, 1, (1 << width) - 1, rng.getrandbits(width)])
            out.action.params.add(param_id=param_id, value=self.encode(value, width))
        return out

    def update(self) -> Any:
        """One random Update: mostly table entries, well-formed or broken."""
        rng = self.rng
        if rng.random() < 0.05:
            return self.other_entity()
        table = rng.choice(self.tables)
        update = p4runtime_pb2.Update(type=rng.choices([INSERT, MODIFY, DELETE], [5, 2, 3])[0])
        entry = update.entity.table_entry
        if rng.random() < 0.05:
            update.type = MODIFY
            entry.table_id, entry.is_default_action = table.id, True
            if rng.random() < 0.7:
                entry.action.CopyFrom(self.action(table, default=rng.random() < 0.9))
        else:
            entry.CopyFrom(self.entry(table))
        roll = rng.random()
        for _ in range(0 if roll < 0.5 else 1 if roll < 0.9 else rng.randint(2, 4)):
            rng.choice(self.MUTATIONS)(self, update, entry, table)
        return update

    def other_entity(self) -> Any:
        """An update of another entity kind: plausible or random ids and values, garbage
        bytes, or no entity at all.  (No action profile members: the model has none.)"""
        rng = self.rng
        update = p4runtime_pb2.Update(type=rng.randint(0, 4))
        kind = rng.choice(OTHER_KINDS + [None])
        if kind is None:
            return update
        entity = getattr(update.entity, kind)
        entity.SetInParent()
        if rng.random() < 0.3:
            with contextlib.suppress(DecodeError):  # not one of this kind: it stays empty
                entity.MergeFromString(rng.randbytes(rng.randint(0, 12)))
            return update
        if kind == "counter_entry":
            entity.counter_id = self._some_id("counters")
            self._index(entity)
            entity.data.packet_count = rng.getrandbits(20)
            entity.data.byte_count = rng.getrandbits(40)
        elif kind == "meter_entry":
            entity.meter_id = self._some_id("meters")
            self._index(entity)
            self._meter(entity.config)
        elif kind == "register_entry":
            entity.register_id = self._some_id("registers")
            self._index(entity)
            if rng.random() < 0.8:
                entity.data.bitstring = rng.randbytes(rng.randint(0, 6))
            else:
                entity.data.bool = True
        elif kind in ("direct_counter_entry", "direct_meter_entry"):
            source = self.entry(rng.choice(self.tables))
            entity.table_entry.table_id = source.table_id
            entity.table_entry.match.extend(source.match)
            entity.table_entry.priority = source.priority
            entity.table_entry.is_default_action = rng.random() < 0.1
            if kind == "direct_counter_entry":
                entity.data.packet_count = rng.getrandbits(20)
            else:
                self._meter(entity.config)
        elif kind == "packet_replication_engine_entry":
            if rng.random() < 0.5:
                group = entity.multicast_group_entry
                group.multicast_group_id = rng.choice([0, 1, 2, 65535, rng.getrandbits(32)])
            else:
                group = entity.clone_session_entry
                group.session_id = rng.choice([0, 1, 5, rng.getrandbits(32)])
                group.packet_length_bytes = rng.choice([0, 64, rng.getrandbits(31)])
            for _ in range(rng.randint(0, 4)):
                replica = group.replicas.add(instance=rng.choice([0, 1, rng.getrandbits(32)]))
                if rng.random() < 0.7:
                    replica.egress_port = rng.choice([0, 1, 2, 511, rng.getrandbits(32)])
                else:
                    replica.port = rng.randbytes(rng.randint(0, 3))
        elif kind == "digest_entry":
            entity.digest_id = self._some_id("digests")
            entity.config.max_list_size = rng.choice([-1, 0, 1, 100])
            entity.config.max_timeout_ns = rng.choice([-1, 0, 10**6])
        elif kind == "value_set_entry":
            entity.value_set_id = self._some_id("value_sets")
            for _ in range(rng.randint(0, 3)):
                entity.members.add().match.add(field_id=1).exact.value = rng.randbytes(2)
        else:
            entity.extern_type_id, entity.extern_id = rng.getrandbits(8), rng.getrandbits(32)
        return update

    def _some_id(self, kind: str) -> int:
        return self.rng.choice(self.schema.ids[kind] * 3 + [0, self.rng.getrandbits(32)])

    def _index(self, entity: Any) -> None:
        if self.rng.random() < 0.85:
            entity.index.index = self.rng.choice([-1, 0, 1, 7, 15, 16, 1023, 1024, 2**63 - 1])

    def _meter(self, config: Any) -> None:
        if self.rng.random() < 0.9:
            config.cir, config.cburst, config.pir, config.pburst = (
                self.rng.choice([-2, -1, 0, 5, 10**6, 2**32, 2**62]) for _ in range(4))

    def stream_message(self) -> Any:
        """An arbitration (below PRIMARY_HIGH), packet-out, digest ack, other, or nothing."""
        rng = self.rng
        message = p4runtime_pb2.StreamMessageRequest()
        choice = rng.randrange(6)
        if choice <= 1:
            arbitration = message.arbitration
            arbitration.device_id = 0 if rng.random() < 0.85 else rng.getrandbits(64)
            if rng.random() < 0.9:
                arbitration.election_id.high = rng.choice([0, rng.randrange(PRIMARY_HIGH)])
                arbitration.election_id.low = rng.getrandbits(64)
            if rng.random() < 0.1:
                arbitration.role.name = rng.randbytes(4).hex()
        elif choice == 2:
            self.packet(message.packet, metadata=rng.random() < 0.5)
        elif choice == 3:
            message.digest_ack.digest_id = rng.choice([0, rng.getrandbits(32)])
            message.digest_ack.list_id = rng.getrandbits(64)
        elif choice == 4:
            message.other.type_url = rng.randbytes(6).hex()
            message.other.value = rng.randbytes(rng.randint(0, 20))
        return message

    def packet(self, packet: Any, metadata: bool) -> None:
        """A random payload, with random metadata or none."""
        rng = self.rng
        packet.payload = rng.randbytes(rng.randint(0, 120))
        for _ in range(rng.randint(1, 3) if metadata else 0):
            packet.metadata.add(metadata_id=rng.randint(0, 4),
                                value=rng.randbytes(rng.randint(0, 3)))

    def mangle(self, data: bytes) -> bytes:
        """``data`` with bytes changed, inserted, deleted or cut off."""
        rng, out = self.rng, bytearray(data)
        for _ in range(rng.randint(1, 6)):
            position = rng.randint(0, len(out))
            roll = rng.random()
            if roll < 0.4 and position < len(out):
                out[position] = rng.getrandbits(8)
            elif roll < 0.7:
                out[position:position] = rng.randbytes(rng.randint(1, 8))
            elif roll < 0.9:
                del out[position:position + rng.randint(1, 8)]
            else:
                del out[position:]
        return bytes(out)

    # -- ways to break an update: (generator, update, entry, table) -> None ------------
    def _bad_table(self, update: Any, entry: Any, table: TableSpec) -> None:
        ids = [0, self.rng.getrandbits(32), *self.schema.actions, *self.schema.tables]
        entry.table_id = self.rng.choice(ids)

    def _bad_fields(self, update: Any, entry: Any, table: TableSpec) -> None:
        rng = self.rng
        roll = rng.random()
        if roll < 0.3 or not entry.match:
            entry.match.add(field_id=rng.choice([0, 9, rng.getrandbits(32)])).exact.value = b"\1"
        elif roll < 0.5:
            entry.match.add().CopyFrom(rng.choice(entry.match))
        elif roll < 0.7:
            del entry.match[rng.randrange(len(entry.match))]
        else:
            field = rng.choice(entry.match)
            kind = rng.choice(["exact", "lpm", "ternary", "range", "optional"])
            field.ClearField(field.WhichOneof("field_match_type") or "exact")
            getattr(field, kind).SetInParent()
            if kind == "lpm":
                field.lpm.value, field.lpm.prefix_len = rng.randbytes(2), rng.randint(-2, 40)
            elif kind in ("exact", "optional"):
                getattr(field, kind).value = rng.randbytes(rng.randint(0, 3))

    def _bad_values(self, update: Any, entry: Any, table: TableSpec) -> None:
        rng = self.rng
        if not entry.match:
            return
        field = rng.choice(entry.match)
        kind = field.WhichOneof("field_match_type")
        if kind is None or kind == "other":
            return
        part = getattr(field, kind)
        names = [n for n in ("value", "mask", "low", "high") if hasattr(part, n)]
        roll = rng.random()
        if roll < 0.4:  # too wide, zero, or random
            width = next((w for i, w, _ in table.fields if i == field.field_id), 16)
            value = rng.choice([1 << width, rng.getrandbits(width + 8), 0])
            setattr(part, rng.choice(names), canonical(value))
        elif kind == "lpm":
            part.prefix_len = rng.choice([-1, 0, part.prefix_len + 1, 200, part.prefix_len - 1])
        elif kind == "range":
            part.low, part.high = part.high, part.low
        elif kind == "ternary":
            part.value = canonical(int.from_bytes(part.value, "big") | 1 << rng.randint(0, 8))
        else:
            setattr(part, rng.choice(names), rng.randbytes(rng.randint(0, 9)))

    def _bad_priority(self, update: Any, entry: Any, table: TableSpec) -> None:
        entry.priority = self.rng.choice([0, -1, 1, 3, 2**31 - 1, -2**31])

    def _bad_action(self, update: Any, entry: Any, table: TableSpec) -> None:
        rng = self.rng
        roll = rng.random()
        if roll < 0.15:
            entry.ClearField("action")
        elif roll < 0.25:
            entry.action.Clear()
            entry.action.SetInParent()
        elif roll < 0.35:
            entry.action.action_profile_member_id = rng.getrandbits(8)
        elif roll < 0.4:
            entry.action.action_profile_group_id = rng.getrandbits(8)
        elif roll < 0.45:
            entry.action.action_profile_action_set.action_profile_actions.add(weight=1)
        elif roll < 0.75:
            entry.action.action.action_id = rng.choice(
                [rng.getrandbits(32), 0, *self.schema.actions, *table.actions])
        else:
            params = entry.action.action.params
            choice = rng.randrange(4)
            if choice == 0 or not params:
                params.add(param_id=rng.randint(0, 4), value=rng.randbytes(rng.randint(0, 5)))
            elif choice == 1:
                del params[rng.randrange(len(params))]
            elif choice == 2:
                params.add().CopyFrom(rng.choice(params))
            else:
                rng.choice(params).value = rng.randbytes(rng.randint(0, 7))

    def _bad_extras(self, update: Any, entry: Any, table: TableSpec) -> None:
        rng = self.rng
        choice = rng.randrange(8)
        if choice == 0:
            update.type = rng.choice([0, 4, 5, 99])
        elif choice == 1:
            entry.is_default_action = not entry.is_default_action
        elif choice == 2:
            entry.time_since_last_hit.elapsed_ns = rng.getrandbits(20)
        elif choice == 3:
            meter = entry.meter_config
            meter.cir, meter.cburst, meter.pir, meter.pburst = (
                rng.choice([-2, -1, 0, 1000, 2**32, 2**40]) for _ in range(4))
        elif choice == 4:
            entry.counter_data.packet_count = rng.getrandbits(16)
        elif choice == 5:
            entry.idle_timeout_ns = rng.choice([-5, 0, 1, 10**9])
        elif choice == 6:
            entry.is_const = True
        else:
            entry.meter_counter_data.green.packet_count = 1

    def _garbage(self, update: Any, entry: Any, table: TableSpec) -> None:
        """Random bytes spliced into the serialised entry (kept when it still parses)."""
        rng = self.rng
        data = bytearray(entry.SerializeToString())
        for _ in range(rng.randint(1, 4)):
            position = rng.randint(0, len(data))
            if rng.random() < 0.5 and position < len(data):
                data[position] = rng.getrandbits(8)
            else:
                data[position:position] = rng.randbytes(rng.randint(1, 4))
        try:
            garbled = TableEntry.FromString(bytes(data))
        except DecodeError:  # unparsable: the entry stays as it was
            return
        entry.CopyFrom(garbled)

    MUTATIONS = [_bad_table, _bad_fields, _bad_fields, _bad_values, _bad_values, _bad_priority,
                 _bad_action, _bad_action, _bad_extras, _bad_extras, _garbage, _garbage]


def pipeline_request(rng: random.Random, p4info: Any, device_config: bytes,
                     others: list[tuple[Any, bytes]],
                     election: tuple[int, int]) -> tuple[Any, int, bool | None]:
    """(request, case, must fail) of a SetForwardingPipelineConfig that must fail (garbage,
    mismatched, wrong action, not primary), a VERIFY (True: may fail, changes nothing),
    or a RECONCILE_AND_COMMIT of the running program (None: must succeed)."""
    request = SetRequest(device_id=0, action=rng.choice(
        [SetRequest.VERIFY, SetRequest.VERIFY_AND_SAVE, SetRequest.VERIFY_AND_COMMIT,
         SetRequest.RECONCILE_AND_COMMIT]))
    request.election_id.high, request.election_id.low = election
    request.config.p4info.CopyFrom(p4info)
    request.config.p4_device_config = device_config
    config, must_fail = request.config, True
    other_names, other_json = rng.choice(others)
    case = rng.randrange(10)
    if case == 0:
        config.p4_device_config = rng.randbytes(rng.randint(0, 300))
    elif case == 1:  # a cut JSON is never valid JSON
        config.p4_device_config = device_config[:rng.randint(0, len(device_config.rstrip()) - 2)]
    elif case == 2:  # the legacy P4DeviceConfig wrapper around garbage
        inner = rng.randbytes(rng.randint(1, 100))
        config.p4_device_config = b"\x1a" + bytes([len(inner)]) + inner
    elif case == 3:
        if rng.random() < 0.5:
            config.p4info.CopyFrom(other_names.p4info)
        else:
            config.p4_device_config = other_json
    elif case == 4:
        request.action = rng.choice([0, 6, 100, 2**31 - 1])
    elif case == 5:
        request.action = SetRequest.COMMIT  # nothing saved
    elif case == 6:
        choice = rng.randrange(3)
        if choice == 0:
            request.device_id = rng.getrandbits(64) or 1
        elif choice == 1:
            request.election_id.high = rng.randrange(election[0])
        else:
            config.ClearField("p4info")
    elif case == 7:  # VERIFY changes nothing, whatever the P4Info says
        request.action, must_fail = SetRequest.VERIFY, False
        if rng.random() < 0.5:
            config.p4info.CopyFrom(other_names.p4info)
            config.p4_device_config = other_json
        table = rng.choice(config.p4info.tables)
        if rng.random() < 0.5:
            table.match_fields[0].bitwidth += 1
        else:
            table.preamble.id ^= 1 << rng.randint(0, 23)
    else:
        request.action, must_fail = SetRequest.RECONCILE_AND_COMMIT, None
    return request, case, must_fail
