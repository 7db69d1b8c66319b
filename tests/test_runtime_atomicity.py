"""Write atomicity modes that PI answers UNIMPLEMENTED and our switch implements.

ROLLBACK_ON_ERROR: a batch with one bad update leaves every table, default
entry and direct counter as it was (compared with a full read before and
after). DATAPLANE_ATOMIC: while batches flip two tables between two consistent
states, every packet that comes out shows one state or the other, never a mix.
The switch, engine and gRPC server are the real ones; frames enter through the
switch's data-plane entry point from a second thread.
"""

from __future__ import annotations

import threading
import time

import grpc
import pytest
from google.protobuf import struct_pb2
from procs import REPO, flow
from rawclient import Names, Served, batch_errors, load_p4info, update
from scapy.layers.l2 import Ether

from p4runtime_lib import P4Info, default_entry, table_entry
from p4runtime_lib.protos import p4runtime_pb2

WriteRequest = p4runtime_pb2.WriteRequest
INSERT, MODIFY, DELETE = (p4runtime_pb2.Update.INSERT, p4runtime_pb2.Update.MODIFY,
                          p4runtime_pb2.Update.DELETE)
ABORTED, ALREADY_EXISTS = 10, 6  # google.rpc codes


@pytest.fixture
def load_balance() -> tuple[Served, object, P4Info]:
    served = Served()
    info = P4Info.load(REPO / "build/load_balance.p4.p4info.txtpb")
    names = Names(load_p4info(REPO / "build/load_balance.p4.p4info.txtpb"))
    client = served.primary(names, (REPO / "build/load_balance.json").read_bytes())
    yield served, client, info
    served.close()


def nhop(info: P4Info, select: int, dmac: str, port: int) -> p4runtime_pb2.TableEntry:
    return table_entry(info, "ecmp_nhop", {"meta.ecmp_select": select}, "set_nhop",
                       {"nhop_dmac": dmac, "nhop_ipv4": "10.0.2.2", "port": port})


def smac(info: P4Info, port: int, mac: str) -> p4runtime_pb2.TableEntry:
    return table_entry(info, "send_frame", {"standard_metadata.egress_port": port},
                       "rewrite_mac", {"smac": mac})


def write(client, atomicity: int, *updates: p4runtime_pb2.Update) -> None:
    request = WriteRequest(device_id=0, updates=updates, atomicity=atomicity)
    request.election_id.high, request.election_id.low = client.election
    client.stub.Write(request, timeout=10)


def everything(client) -> list[bytes]:
    """Every entry of every table with its direct counters, and every default entry."""
    entries = p4runtime_pb2.TableEntry()
    entries.counter_data.SetInParent()
    defaults = [p4runtime_pb2.TableEntry(table_id=t.preamble.id, is_default_action=True)
                for t in client_tables(client)]
    found = client.read(p4runtime_pb2.Entity(table_entry=entries),
                        *(p4runtime_pb2.Entity(table_entry=d) for d in defaults))
    return sorted(e.SerializeToString(deterministic=True) for e in found)


def client_tables(client) -> list:
    request = p4runtime_pb2.GetForwardingPipelineConfigRequest(device_id=0)
    return list(client.stub.GetForwardingPipelineConfig(request).config.p4info.tables)


@pytest.mark.parametrize("mode", [WriteRequest.ROLLBACK_ON_ERROR, WriteRequest.DATAPLANE_ATOMIC])
def test_a_batch_with_one_bad_update_leaves_nothing_applied(load_balance, mode) -> None:
    served, client, info = load_balance
    client.write(update(INSERT, table_entry=nhop(info, 0, "00:00:00:00:00:0a", 2)),
                 update(INSERT, table_entry=nhop(info, 1, "00:00:00:00:00:0b", 3)),
                 update(INSERT, table_entry=smac(info, 2, "00:00:00:00:02:00")),
                 update(INSERT, table_entry=table_entry(
                     info, "ecmp_group", {"hdr.ipv4.dstAddr": "10.0.0.1/32"},
                     "set_ecmp_select", {"ecmp_base": 0, "ecmp_count": 2})))
    served.switch.receive(1, flow(1000))  # counts one packet in an ecmp_nhop entry
    assert sum(e.table_entry.counter_data.packet_count
               for e in client.read(p4runtime_pb2.Entity(table_entry=p4runtime_pb2.TableEntry(
                   table_id=info.table("ecmp_nhop").preamble.id,
                   counter_data=p4runtime_pb2.CounterData())))) == 1
    before = everything(client)

    bad = [update(INSERT, table_entry=nhop(info, 5, "00:00:00:00:00:0c", 2)),   # new entry
           update(MODIFY, table_entry=nhop(info, 0, "00:00:00:00:00:0d", 3)),   # its counter
           update(DELETE, table_entry=nhop(info, 1, "00:00:00:00:00:0b", 3)),   # goes too
           update(MODIFY, table_entry=default_entry(info, "ecmp_group", "MyIngress.drop")),
           update(INSERT, table_entry=smac(info, 3, "00:00:00:00:03:00")),
           update(INSERT, table_entry=smac(info, 2, "00:00:00:00:02:99"))]      # duplicate
    with pytest.raises(grpc.RpcError) as failure:
        write(client, mode, *bad)
    codes = [code for code, _ in batch_errors(failure.value)]
    assert codes == [ABORTED] * 5 + [ALREADY_EXISTS]
    assert everything(client) == before  # entries, actions, counters, defaults
    print(f"rolled back 5 updates; {len(before)} entries and defaults unchanged")

    write(client, mode, *bad[:5])  # without the bad one, the whole batch applies
    after = everything(client)
    assert after != before and len(after) == len(before) + 1  # +5, +3, -1


def test_a_dataplane_atomic_batch_is_never_seen_half_applied(load_balance) -> None:
    """Two tables change in one batch: ecmp_nhop's MAC and send_frame's MAC, so a
    packet that saw one update but not the other would carry a mixed pair."""
    served, client, info = load_balance
    states = [("00:00:00:00:00:a0", "00:00:00:00:02:a0"),
              ("00:00:00:00:00:b1", "00:00:00:00:02:b1")]
    client.write(update(INSERT, table_entry=table_entry(
                     info, "ecmp_group", {"hdr.ipv4.dstAddr": "10.0.0.1/32"},
                     "set_ecmp_select", {"ecmp_base": 0, "ecmp_count": 1})),
                 update(INSERT, table_entry=nhop(info, 0, states[0][0], 2)),
                 update(INSERT, table_entry=smac(info, 2, states[0][1])))
    stop = threading.Event()

    def traffic() -> None:
        frames = [flow(sport) for sport in range(1000, 1064)]
        while not stop.is_set():
            served.switch.receive_batch(1, frames)
            time.sleep(0.001)  # let the writer in: frames keep flowing between batches

    sender = threading.Thread(target=traffic)
    sender.start()
    try:
        for flip in range(1, 101):
            dmac, source = states[flip % 2]
            write(client, WriteRequest.DATAPLANE_ATOMIC,
                  update(MODIFY, table_entry=nhop(info, 0, dmac, 2)),
                  update(MODIFY, table_entry=smac(info, 2, source)))
    finally:
        stop.set()
        sender.join()
    out = served.ports[2].frames
    seen = {(Ether(f).dst, Ether(f).src) for f in set(out)}
    print(f"{len(out)} packets during 100 two-table batches: (dst, src) pairs {seen}")
    assert len(served.ports[2].frames) > 1000
    assert seen <= set(states), seen - set(states)
    assert seen == set(states)  # both states were really seen


def test_capabilities_list_the_modes_and_an_unknown_mode_is_refused(load_balance) -> None:
    served, client, info = load_balance
    answer = client.stub.Capabilities(p4runtime_pb2.CapabilitiesRequest())
    listed = struct_pb2.Struct()
    assert answer.experimental.Unpack(listed)
    assert list(listed["write_atomicity"]) == ["CONTINUE_ON_ERROR", "ROLLBACK_ON_ERROR",
                                               "DATAPLANE_ATOMIC"]
    request = WriteRequest(device_id=0, atomicity=7)
    request.election_id.low = 1
    with pytest.raises(grpc.RpcError) as failure:
        client.stub.Write(request)
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
