"""Fuzzed P4Runtime requests against the switch's server, checked against a model.

Seeded random Write / Read / SetForwardingPipelineConfig / StreamChannel messages --
unknown ids, wrong widths, missing fields, wrong match kinds, garbage bytes, garbage
device configs, huge batches -- must each get a gRPC status, and after every step a
read of every table (entries and default actions) must equal ``fuzzmodel.TableModel``,
which decides from the P4Runtime spec and PI's checks what each update does.
``FUZZ_SEED=n`` replays another sequence.
"""

from __future__ import annotations

import os
import random
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import grpc
import pytest
from fuzzgen import PRIMARY_HIGH, Generator, SetRequest, pipeline_request
from fuzzmodel import DELETE, INSERT, OK, Schema, TableModel, key_of, refusal_of
from google.protobuf.message import DecodeError
from rawclient import (
    GRPC_OPTIONS,
    Names,
    Served,
    Stream,
    batch_errors,
    failed_write,
    load_p4info,
    own_program,
)

from p4runtime_lib.protos import code_pb2, p4runtime_pb2, p4runtime_pb2_grpc

REPO = Path(__file__).resolve().parent.parent
PROGRAMS = ["load_balance", "tables", "runtime"]
PRIMARY = (PRIMARY_HIGH, 7)  # (high, low): above every election id the fuzz sends
CPU_PORT = 64
STEPS = 600
MIN_MESSAGES = 10_000  # per program
SEED = int(os.environ.get("FUZZ_SEED", "0"))
P4RT = "/p4.v1.P4Runtime/"
DEAD = (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE)
Entity, TableEntry = p4runtime_pb2.Entity, p4runtime_pb2.TableEntry
GetRequest = p4runtime_pb2.GetForwardingPipelineConfigRequest
REQUESTS = {"Write": p4runtime_pb2.WriteRequest, "Read": p4runtime_pb2.ReadRequest,
            "SetForwardingPipelineConfig": SetRequest, "GetForwardingPipelineConfig": GetRequest,
            "Capabilities": p4runtime_pb2.CapabilitiesRequest}


def program(name: str) -> tuple[Names, bytes]:
    """(P4Info names, BMv2 JSON) of the exercise's program or of one under tests/p4."""
    if name == "load_balance":
        return (Names(load_p4info(REPO / "build/load_balance.p4.p4info.txtpb")),
                (REPO / "build/load_balance.json").read_bytes())
    return own_program(name)


def status(call: Any, *args: Any) -> tuple[grpc.StatusCode, Any]:
    """(status code, result or error) of a unary or server-streaming call."""
    try:
        result = call(*args, timeout=60)
        if isinstance(result, grpc.Call):  # a response stream
            result = list(result)
    except grpc.RpcError as error:
        assert error.code() not in DEAD, f"the server did not answer: {error}"
        return error.code(), error
    return grpc.StatusCode.OK, result


class Fuzz:
    """A switch serving one program, its primary client, the model and the generator."""

    def __init__(self, name: str) -> None:
        self.name, self.seed = name, SEED ^ zlib.crc32(name.encode())
        self.names, self.device_config = program(name)
        self.others = [program(other) for other in PROGRAMS if other != name]
        self.rng = random.Random(self.seed)
        self.served = Served(cpu_port=CPU_PORT)
        self.client = self.served.client()
        # A failed batch lists every update's error in its trailer: room for 20,000 of them.
        self.client.channel = grpc.insecure_channel(self.served.address, options=GRPC_OPTIONS + [
            ("grpc.max_metadata_size", 1 << 26), ("grpc.absolute_max_metadata_size", 1 << 26)])
        self.client.stub = p4runtime_pb2_grpc.P4RuntimeStub(self.client.channel)
        self.stream = self.client.stream = Stream(self.client.stub)
        self.stream.arbitrate(PRIMARY[1], PRIMARY[0])
        assert self.stream.receive().arbitration.status.code == OK
        self.client.election = PRIMARY
        self.client.set_pipeline(self.names.p4info, self.device_config)
        self.model = TableModel(Schema(self.names.p4info))
        self.model.seed(*self.read_all())
        self.gen = Generator(self.model.schema, self.model, self.rng)
        self.counts: Counter[str] = Counter()
        self.last = "the start"

    def close(self) -> None:
        self.served.close()

    # -- the model check -------------------------------------------------------------
    def read_all(self) -> tuple[list[Any], list[Any]]:
        entities = self.client.read(Entity(table_entry=TableEntry()),
                                    Entity(table_entry=TableEntry(is_default_action=True)))
        entries = [e.table_entry for e in entities]
        return ([e for e in entries if not e.is_default_action],
                [e for e in entries if e.is_default_action])

    def check(self) -> None:
        problems = self.model.differences(*self.read_all())
        assert not problems, f"after {self.last}:\n" + "\n".join(problems[:5])

    # -- Write ----------------------------------------------------------------------
    def write_request(self, updates: list[Any]) -> p4runtime_pb2.WriteRequest:
        request = p4runtime_pb2.WriteRequest(device_id=0, updates=updates)
        request.election_id.high, request.election_id.low = PRIMARY
        return request

    def write(self, request: p4runtime_pb2.WriteRequest, raw: bytes | None = None) -> None:
        """Send a Write (as built, or its raw bytes) and check it against the model."""
        self.counts["writes"] += 1
        self.counts["updates"] += len(request.updates)
        refusal = refusal_of(request, PRIMARY)
        if raw is None:
            code, result = status(self.client.stub.Write, request)
        else:
            code, result = status(self.client.channel.unary_unary(P4RT + "Write"), raw)
        if refusal is not None:
            assert code.value[0] == refusal, (self.last, code, refusal)
            return
        if code == grpc.StatusCode.OK:
            codes = [OK] * len(request.updates)
        else:
            assert code == grpc.StatusCode.UNKNOWN, (self.last, result)
            codes = [c for c, _ in batch_errors(result)]
        if request.atomicity == p4runtime_pb2.WriteRequest.CONTINUE_ON_ERROR:
            problem = self.model.settle_batch(request.updates, codes)
        else:
            self.counts["all-or-none writes"] += 1
            problem = self.model.settle_all_or_none(request.updates, codes)
        assert problem is None, f"{self.last}: {problem}"

    def write_step(self) -> None:
        rng = self.rng
        size = rng.choice([1, 2, 3, 5, 10, 20, 40, 80, 250])
        request = self.write_request([self.gen.update() for _ in range(size)])
        roll = rng.random()
        if roll < 0.02:
            request.device_id = rng.getrandbits(64) or 1
        elif roll < 0.04:
            request.election_id.high = rng.getrandbits(63)
        elif roll < 0.06:
            request.atomicity = rng.randint(1, 3)  # 3 is no mode: the whole Write is refused
        self.last = f"a Write of {size} updates"
        self.write(request)

    # -- Read -----------------------------------------------------------------------
    def read_step(self) -> None:
        """A read of one key (must agree with the model), or a random ReadRequest."""
        rng = self.rng
        self.counts["reads"] += 1
        if rng.random() < 0.5:
            table = rng.choice(self.gen.tables)
            source = rng.choice(list(self.model.entries.values()) or [self.gen.entry(table)])
            probe = TableEntry(table_id=source.table_id, match=source.match,
                               priority=source.priority)
            if rng.random() < 0.3:
                rng.choice(Generator.MUTATIONS[1:6])(self.gen, None, probe, table)
            self.last = f"a read of {probe}"
            want = self.model.expected_read(probe)
            if want is None:
                code, _ = status(self.client.stub.Read, p4runtime_pb2.ReadRequest(
                    device_id=0, entities=[Entity(table_entry=probe)]))
                assert code == grpc.StatusCode.INVALID_ARGUMENT, (self.last, code)
            else:
                assert self.read_sorted(probe) == want, self.last
            return
        request = p4runtime_pb2.ReadRequest(device_id=rng.choice([0, 0, 0, 1, 2**64 - 1]))
        for _ in range(rng.randint(0, 4)):
            entity = request.entities.add()
            if rng.random() < 0.6:
                entity.table_entry.CopyFrom(self.gen.update().entity.table_entry)
                entity.table_entry.is_default_action = rng.random() < 0.2
            else:
                entity.CopyFrom(self.gen.other_entity().entity)
        self.last = f"the read {request}"
        code, result = status(self.client.stub.Read, request)
        assert code != grpc.StatusCode.INTERNAL, (self.last, result)

    def read_sorted(self, probe: Any) -> list[Any]:
        return sorted((e.table_entry for e in self.client.read(Entity(table_entry=probe))),
                      key=key_of)

    # -- raw bytes on unary RPCs ----------------------------------------------------
    def valid_request(self, method: str) -> Any:
        rng = self.rng
        if method == "Write":
            return self.write_request([self.gen.update() for _ in range(rng.randint(1, 5))])
        if method == "Read":
            return p4runtime_pb2.ReadRequest(entities=[Entity(table_entry=TableEntry())])
        if method == "SetForwardingPipelineConfig":  # never the primary: it must fail
            request = SetRequest(device_id=0, action=SetRequest.VERIFY_AND_COMMIT)
            request.election_id.low = 1
            request.config.p4info.CopyFrom(self.names.p4info)
            request.config.p4_device_config = self.device_config[:200]
            return request
        if method == "GetForwardingPipelineConfig":
            return GetRequest(response_type=rng.randint(0, 5))
        return p4runtime_pb2.CapabilitiesRequest()

    def garbage_step(self) -> None:
        """Random or mangled bytes to a unary RPC: always a status; writes still modelled."""
        rng = self.rng
        method = rng.choice(list(REQUESTS))
        if rng.random() < 0.3:
            data = rng.randbytes(rng.randint(0, 64))
        else:
            data = self.gen.mangle(self.valid_request(method).SerializeToString())
        self.counts["garbage RPCs"] += 1
        self.last = f"garbage {data!r} to {method}"
        try:
            parsed = REQUESTS[method].FromString(data)
        except DecodeError:
            parsed = None
        if method == "Write" and parsed is not None:
            self.counts["garbage RPCs"] -= 1
            self.write(parsed, raw=data)
            return
        if method == "Read":
            code, result = status(self.client.channel.unary_stream(P4RT + method), data)
        else:
            code, result = status(self.client.channel.unary_unary(P4RT + method), data)
        if parsed is None or method == "SetForwardingPipelineConfig":  # never the primary
            assert code != grpc.StatusCode.OK, self.last
        elif method == "Capabilities":
            assert code == grpc.StatusCode.OK, (self.last, result)

    # -- SetForwardingPipelineConfig -----------------------------------------------
    def pipeline_step(self) -> None:
        """A config that must fail (garbage, mismatched, wrong action, not primary), a
        VERIFY, or a RECONCILE_AND_COMMIT of the same program: the tables stay as modelled."""
        request, case, must_fail = pipeline_request(
            self.rng, self.names.p4info, self.device_config, self.others, PRIMARY)
        self.counts["pipeline configs"] += 1
        self.last = f"SetForwardingPipelineConfig case {case}, action {request.action}"
        code, result = status(self.client.stub.SetForwardingPipelineConfig, request)
        if must_fail:
            assert code != grpc.StatusCode.OK, self.last
        elif must_fail is None:
            assert code == grpc.StatusCode.OK, (self.last, result)
        assert code != grpc.StatusCode.INTERNAL, (self.last, result)
        reply = self.client.stub.GetForwardingPipelineConfig(
            GetRequest(device_id=0, response_type=GetRequest.P4INFO_AND_COOKIE), timeout=10)
        assert reply.config.p4info == self.names.p4info, self.last

    # -- StreamChannel ----------------------------------------------------------------
    def stream_step(self) -> None:
        """A short stream of its own: messages, then the end; it must end with a status."""
        rng = self.rng
        if rng.random() < 0.25:
            frames = [rng.randbytes(rng.randint(0, 30)) if rng.random() < 0.5
                      else self.gen.mangle(self.gen.stream_message().SerializeToString())
                      for _ in range(rng.randint(1, 5))]
            self.counts["stream messages"] += len(frames)
            self.last = f"raw stream frames {frames}"
            call = self.client.channel.stream_stream(P4RT + "StreamChannel")
            status(call, iter(frames))
            return
        messages = [self.gen.stream_message() for _ in range(rng.randint(1, 8))]
        self.counts["stream messages"] += len(messages)
        self.last = f"a stream of {messages}"
        code, result = status(self.client.stub.StreamChannel, iter(messages))
        for response in result if code == grpc.StatusCode.OK else []:
            if response.HasField("arbitration"):  # never primary: ours is the highest id
                assert response.arbitration.status.code == code_pb2.ALREADY_EXISTS, self.last
                election = response.arbitration.election_id
                assert (election.high, election.low) == PRIMARY, self.last
            assert response.error.canonical_code != code_pb2.INTERNAL, (self.last, response)

    def primary_step(self) -> None:
        """Packet-outs and digest acks on the primary's stream; a packet-out with
        metadata (none of these programs has a packet_out header) is an error echo."""
        rng, sent = self.rng, []
        for _ in range(rng.randint(1, 10)):
            message = p4runtime_pb2.StreamMessageRequest()
            if rng.random() < 0.8:
                self.gen.packet(message.packet, metadata=rng.random() < 0.3)
            else:
                message.digest_ack.digest_id = rng.getrandbits(32)
            sent.append(message)
        sentinel = p4runtime_pb2.StreamMessageRequest()
        sentinel.packet.payload = rng.randbytes(16)
        sentinel.packet.metadata.add(metadata_id=1, value=b"\x01")
        sent.append(sentinel)
        self.last = f"on the primary stream {sent}"
        for message in sent:
            self.stream.send(message)
        self.counts["stream messages"] += len(sent)
        echoes = 0
        while True:
            response = self.stream.receive(timeout=30)
            assert isinstance(response, p4runtime_pb2.StreamMessageResponse), response
            assert response.error.canonical_code != code_pb2.INTERNAL, (self.last, response)
            if response.error.HasField("packet_out"):
                echoes += 1
                if response.error.packet_out.packet_out == sentinel.packet:
                    break
        assert echoes == sum(1 for m in sent if m.HasField("packet") and m.packet.metadata)

    # -- the whole run ---------------------------------------------------------------
    def run(self, steps: int) -> None:
        steps_by_weight = [(self.write_step, 45), (self.read_step, 14),
                           (self.garbage_step, 14), (self.pipeline_step, 7),
                           (self.stream_step, 12), (self.primary_step, 8)]
        actions, weights = zip(*steps_by_weight)
        step = 0
        while step < steps or self.total() < MIN_MESSAGES:
            self.rng.choices(actions, weights)[0]()
            self.check()
            step += 1
        self.still_works()

    def total(self) -> int:
        """Messages sent: updates, other RPCs and stream messages (a Write is its updates)."""
        return sum(n for kind, n in self.counts.items() if kind != "writes")

    def still_works(self) -> None:
        """Capabilities answers; a known good delete and insert (or insert and delete)."""
        self.last = "the final checks"
        reply = self.client.stub.Capabilities(p4runtime_pb2.CapabilitiesRequest(), timeout=10)
        assert reply.p4runtime_api_version
        tables = self.model.schema.tables
        existing = [e for key, e in self.model.entries.items() if not tables[key[0]].const]
        if existing:
            entry = self.rng.choice(existing)
            self.known_good(DELETE, entry)
            self.known_good(INSERT, entry)
        else:
            table = next(t for t in tables.values() if not (t.const or t.indirect))
            entry = self.gen.entry(table)
            self.known_good(INSERT, entry)
            self.known_good(DELETE, entry)

    def known_good(self, kind: int, entry: Any) -> None:
        assert self.model.predict(kind, entry).codes == {OK}, entry
        self.client.write(p4runtime_pb2.Update(type=kind, entity=Entity(table_entry=entry)))
        assert self.model.settle(kind, entry, OK) is None
        probe = TableEntry(table_id=entry.table_id, match=entry.match, priority=entry.priority)
        assert self.read_sorted(probe) == self.model.expected_read(probe)
        self.check()

    def report(self, capsys: Any, record_property: Any, what: str) -> int:
        total = self.total()
        details = ", ".join(f"{n} {kind}" for kind, n in sorted(self.counts.items()))
        with capsys.disabled():
            print(f"\nfuzz {what}: {total} messages ({details}), seed {self.seed}")
        record_property("fuzz_messages", total)
        return total


@pytest.mark.parametrize("name", PROGRAMS)
def test_fuzzed_requests_agree_with_the_model(name: str, capsys: Any,
                                              record_property: Any) -> None:
    fuzz = Fuzz(name)
    try:
        fuzz.run(STEPS)
    finally:
        fuzz.close()
    assert fuzz.report(capsys, record_property, name) >= MIN_MESSAGES


def test_huge_batches_agree_with_the_model(capsys: Any, record_property: Any) -> None:
    """20,000 updates in one Write (fills the 1024-entry LPM table; the rest are
    duplicates, RESOURCE_EXHAUSTED or broken), then one deleting everything."""
    fuzz = Fuzz("load_balance")
    try:
        rng, names = fuzz.rng, fuzz.names
        table = fuzz.model.schema.tables[names["MyIngress.ecmp_group"]]
        updates = []
        for _ in range(20_000):
            if rng.random() < 0.85:
                entry = TableEntry(table_id=table.id)
                length = rng.randint(1, 32)
                lpm = entry.match.add(field_id=1).lpm
                lpm.value = (rng.getrandbits(32) >> (32 - length) << (32 - length)).to_bytes(
                    4, "big")
                lpm.prefix_len = length
                entry.action.CopyFrom(fuzz.gen.action(table))
                updates.append(p4runtime_pb2.Update(type=INSERT, entity=Entity(
                    table_entry=entry)))
            else:
                updates.append(fuzz.gen.update())
        fuzz.last = "a Write of 20,000 updates"
        fuzz.write(fuzz.write_request(updates))
        fuzz.check()
        assert fuzz.model.sizes[table.id] == table.size
        deletes = [p4runtime_pb2.Update(type=DELETE, entity=Entity(table_entry=TableEntry(
            table_id=e.table_id, match=e.match, priority=e.priority)))
            for e in fuzz.model.entries.values()]
        deletes += [fuzz.gen.update() for _ in range(2_000)]
        rng.shuffle(deletes)
        fuzz.last = f"a Write of {len(deletes)} mostly deletes"
        fuzz.write(fuzz.write_request(deletes))
        fuzz.check()
        fuzz.still_works()
    finally:
        fuzz.close()
    assert fuzz.report(capsys, record_property, "huge batches") >= 20_000


def test_empty_action_for_an_indirect_table_is_invalid_argument(served: Served) -> None:
    """Found by the fuzz: an empty TableAction for a table with an action selector is
    PI's INVALID_ARGUMENT "Invalid table action type" (it was UNIMPLEMENTED, as if it
    were one-shot programming), for INSERT and MODIFY alike."""
    names, device_config = own_program("tables")
    client = served.primary(names, device_config)
    entry = TableEntry(table_id=names["MyIngress.spread_table"])
    entry.match.add(field_id=1).exact.value = b"\x0a\x00\x00\x01"
    entry.action.SetInParent()
    errors = failed_write(client, *(p4runtime_pb2.Update(type=kind, entity=Entity(
        table_entry=entry)) for kind in (INSERT, p4runtime_pb2.Update.MODIFY)))
    assert errors == [(code_pb2.INVALID_ARGUMENT, "Invalid table action type")] * 2


def test_unlimited_meter_config_reads_back_and_reconciles(served: Served) -> None:
    """Found by the fuzz: a table entry's meter config of -1 ("no limit", as PI takes it)
    read back as the engine's internal number, so RECONCILE_AND_COMMIT, which replays
    what it reads, refused the new pipeline ("Pburst too large")."""
    names, device_config = own_program("runtime")
    client = served.primary(names, device_config)
    entry = TableEntry(table_id=names["MyIngress.metered"])
    entry.match.add(field_id=1).exact.value = b"\x01"
    entry.action.action.action_id = names["MyIngress.forward"]
    entry.action.action.params.add(param_id=1, value=b"\x02")
    meter = entry.meter_config
    meter.cir, meter.cburst, meter.pir, meter.pburst = -1, -1, 100, 10
    client.write(p4runtime_pb2.Update(type=INSERT, entity=Entity(table_entry=entry)))
    request = TableEntry()
    request.meter_config.SetInParent()
    assert [e.table_entry for e in client.read(Entity(table_entry=request))] == [entry]
    client.set_pipeline(names.p4info, device_config, SetRequest.RECONCILE_AND_COMMIT)
    assert [e.table_entry for e in client.read(Entity(table_entry=request))] == [entry]
