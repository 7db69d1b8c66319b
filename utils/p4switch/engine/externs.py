"""Stateful objects: counter, meter and register arrays."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .layout import FieldInfo

GREEN, YELLOW, RED = 0, 1, 2


class CounterArray:
    """Packet and byte counters (BMv2 counts the packet's ingress length)."""

    def __init__(self, name: str, size: int, is_direct: bool = False,
                 binding: str | None = None) -> None:
        self.name = name
        self.size = size
        self.is_direct = is_direct
        self.binding = binding
        self.packets = [0] * (0 if is_direct else size)
        self.bytes = [0] * (0 if is_direct else size)

    def count(self, index: int, nbytes: int) -> bool:
        """Count one packet at ``index``; False (nothing counted) when out of range."""
        if not 0 <= index < self.size:
            return False
        self.packets[index] += 1
        self.bytes[index] += nbytes
        return True

    def reset(self) -> None:
        self.packets = [0] * len(self.packets)
        self.bytes = [0] * len(self.bytes)


@dataclass
class MeterConfig:
    """Two-rate three-colour meter parameters, in units per second and units."""

    cir: int
    cburst: int
    pir: int
    pburst: int


class MeterState:
    """Token buckets of one meter instance (RFC 2698 trTCM, colour-blind).

    Times are the caller's (seconds, as ``Pipeline.process`` is given them); the
    buckets start full and refill from the first packet on.
    """

    __slots__ = ("committed", "peak", "stamp")

    def __init__(self, config: MeterConfig) -> None:
        self.committed = float(config.cburst)
        self.peak = float(config.pburst)
        self.stamp: float | None = None

    def execute(self, config: MeterConfig, amount: int, now: float) -> int:
        """The colour of ``amount`` packets or bytes arriving at ``now``."""
        elapsed = 0.0 if self.stamp is None else max(0.0, now - self.stamp)
        self.stamp = now
        self.committed = min(config.cburst, self.committed + elapsed * config.cir)
        self.peak = min(config.pburst, self.peak + elapsed * config.pir)
        if self.peak < amount:
            return RED
        if self.committed < amount:
            self.peak -= amount
            return YELLOW
        self.peak -= amount
        self.committed -= amount
        return GREEN


class MeterArray:
    """Meters: unconfigured instances leave every packet GREEN (as BMv2)."""

    def __init__(self, name: str, size: int, unit: str, is_direct: bool = False,
                 binding: str | None = None, result_target: Any = None) -> None:
        self.name = name
        self.size = size
        self.unit = unit  # "packets" or "bytes"
        self.is_direct = is_direct
        self.binding = binding
        self.result_target = result_target
        self.configs: dict[int, MeterConfig] = {}
        self.states: dict[int, MeterState] = {}

    def configure(self, index: int, config: MeterConfig | None) -> None:
        if config is None:
            self.configs.pop(index, None)
            self.states.pop(index, None)
        else:
            self.configs[index] = config
            self.states[index] = MeterState(config)

    def execute_entry(self, entry: Any, nbytes: int, now: float) -> int:
        """Direct meter: the configuration and state live on the table entry."""
        if entry.meter_config is None:
            return GREEN
        if entry.meter_state is None:
            entry.meter_state = MeterState(entry.meter_config)
        amount = nbytes if self.unit == "bytes" else 1
        return entry.meter_state.execute(entry.meter_config, amount, now)

    def execute(self, index: int, nbytes: int, now: float) -> int:
        """Indexed meter ``index``: its colour for a packet of ``nbytes`` at ``now``."""
        config = self.configs.get(index)
        if config is None:
            return GREEN
        amount = nbytes if self.unit == "bytes" else 1
        return self.states[index].execute(config, amount, now)


class RegisterArray:
    """An array of ``bitwidth``-bit cells, all zero at start."""

    def __init__(self, name: str, size: int, bitwidth: int) -> None:
        self.name = name
        self.size = size
        self.bitwidth = bitwidth
        self.values = [0] * size
        # Stores into a cell truncate like stores into a field of this width.
        self.cell_info = FieldInfo(-1, name, bitwidth, False, -1)

    def reset(self) -> None:
        self.values[:] = [0] * self.size
