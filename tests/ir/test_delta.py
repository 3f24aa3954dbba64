"""Workers get what changed: ``patch(previous, diff(previous, config)) == config``."""

from __future__ import annotations

import random
from pathlib import Path

import msgspec
import pytest

from tests.graph.test_incremental_graph import Tree, new_pipeline
from turnout import ir
from turnout.ir.delta import ConfigDelta, diff, patch

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(ConfigDelta)


def sent(delta: ConfigDelta) -> ConfigDelta:
    """As the worker decodes it."""
    return _decoder.decode(_encoder.encode(delta))


@pytest.mark.parametrize("seed", range(4))
def test_a_patched_configuration_equals_the_new_one(tmp_path: Path, seed: int) -> None:
    tree = Tree(tmp_path, random.Random(seed))
    tree.setup()
    pipeline = new_pipeline(tmp_path)
    _, _, previous = pipeline.compile()
    held = ir.from_msgpack(ir.to_msgpack(previous))  # what a worker holds: its own copy
    for _ in range(25):
        changed = {p.absolute() for p in tree.step()}
        _, _, config = pipeline.compile(changed)
        patched = patch(held, sent(diff(previous, config)))
        assert patched == config
        assert ir.to_msgpack(patched) == ir.to_msgpack(config)
        previous, held = config, patched


def test_only_changed_virtual_hosts_and_clusters_are_sent(tmp_path: Path) -> None:
    tree = Tree(tmp_path, random.Random(5))
    tree.setup()
    pipeline = new_pipeline(tmp_path)
    _, _, previous = pipeline.compile()
    name = sorted(tree.routes)[0]
    _, _, config = pipeline.compile({p.absolute() for p in tree.modify_route(name)})
    delta = diff(previous, config)
    vhosts = [v for g in delta.gateways for entry in g.listeners for v in entry.virtual_hosts]
    new = [v for v in vhosts if isinstance(v, ir.VirtualHost)]
    assert vhosts and len(new) < len(vhosts)  # the others are sent as indexes
    assert len(delta.clusters) < len(config.clusters)


def test_a_delta_against_another_configuration_is_refused() -> None:
    base = ir.Config(version=3)
    delta = diff(ir.Config(version=2), ir.Config(version=4))
    with pytest.raises(ValueError, match="delta against 2"):
        patch(base, delta)
    listener = ir.Listener(
        "gw/l", "127.0.0.1", 80, 80, "HTTP", virtual_hosts=(ir.VirtualHost("a", ()),)
    )
    old = ir.Config(version=1, gateways=(ir.Gateway("gw", "127.0.0.1", (listener,)),))
    keep = diff(old, msgspec.structs.replace(old, version=2))
    with pytest.raises(ValueError, match="bad delta"):
        patch(ir.Config(version=1), keep)  # has no such listener
