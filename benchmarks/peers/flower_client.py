"""The Flower side's ``ClientApp``, in a module of its own so that Ray's workers import it (a
``ClientApp`` defined in ``__main__`` cannot be unpickled there).  Its train handler runs the same
client code as EcoGen: :func:`~ecogen.federated.drivers.fit_lanes`, one
:class:`~ecogen.federated.roles.ClusterClient` on the whole model."""

from __future__ import annotations

from functools import cache

import torch
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from benchmarks.peers.job import HFSL, client_data, initial_model
from ecogen.data.prepared import Split
from ecogen.federated.drivers import fit_lanes
from ecogen.federated.roles import ClusterClient
from ecogen.federated.strategies import strategy_for
from ecogen.peft.tunable import load_tunable_state, tunable_state
from ecogen.split.channel import Channel


@cache
def shards() -> tuple[list[Split], Split]:
    return client_data()


client_app = ClientApp()


@client_app.train()
def train(msg: Message, context: Context) -> Message:
    torch.set_num_threads(1)
    k = int(context.node_config["partition-id"])
    shard = shards()[0][k]
    model = initial_model()
    load_tunable_state(model, dict(msg.content["arrays"].to_torch_state_dict()))
    client = ClusterClient.of(model, shard, HFSL.devices_per_cluster, split=False)
    r = int(msg.content["config"]["server-round"])
    fit_lanes([client], [Channel()], [1000 * (r - 1) + k], strategy_for(HFSL), "cpu")
    reply = RecordDict(
        {
            "arrays": ArrayRecord(tunable_state(client.model)),
            "metrics": MetricRecord({"num-examples": len(shard)}),
        }
    )
    return Message(content=reply, reply_to=msg)
