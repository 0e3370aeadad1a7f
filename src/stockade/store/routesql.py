"""The claim's routing conditions in SQL: queue, labels and sandbox.

Kept apart from the claim's statement (:mod:`~stockade.store.jobs`) so the
conditions other parts add to that statement stay separate from these, and
apart from :mod:`~stockade.store.routing` so the CLI's light reader does not
import SQLAlchemy.

There are three shapes of the claim, one statement each, by what the
worker serves (:func:`queue_shape`): every queue (no queue test: the claim
walks ``ix_jobs_claim``), one queue (``queue = $q``: it walks
``ix_jobs_claim_queue``, which starts with the queue, so a worker of a short
queue does not read past the jobs of long ones), or several (``queue`` in a
list given as one parameter, an array or a JSON list, never an expanding
``IN``: it walks ``ix_jobs_claim`` and skips other queues' jobs).

A job's required labels are a JSON object or NULL; the worker's offer is
one JSON object parameter. PostgreSQL tests containment (``labels <@
$offer``, on ``jsonb``); SQLite tests that no required ``key=value`` is
missing from the offer's. Both test ``labels IS NULL`` first, so a job
that requires no label costs nothing more.
"""

from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from stockade.store import schema as t
from stockade.store.routing import Offer, refused_mask

__all__ = ["SHAPES", "Shape", "claim_args", "queue_shape", "routing_conditions"]

Shape = Literal["any", "one", "some"]
SHAPES: tuple[Shape, ...] = ("any", "one", "some")


def queue_shape(offer: Offer) -> Shape:
    """Which of the claim's statements serves ``offer``'s queues."""
    if offer.queues is None:
        return "any"
    return "one" if len(offer.queues) == 1 else "some"


def _pairs(source: Any) -> Any:
    """``key=value`` of each member of the JSON object ``source`` (SQLite)."""
    each = sa.func.json_each(source).table_valued(
        sa.column("key", sa.String), sa.column("value", sa.String)
    )
    return each, each.c.key.concat("=").concat(each.c.value)


def _labels_condition(dialect: str) -> sa.ColumnElement[bool]:
    jobs = t.jobs
    if dialect == "postgresql":
        offered = sa.bindparam("b_labels", type_=postgresql.JSONB)
        return sa.or_(jobs.c.labels.is_(None), jobs.c.labels.op("<@")(offered))
    need, need_pair = _pairs(jobs.c.labels)
    offer, offer_pair = _pairs(sa.bindparam("b_labels", type_=sa.JSON))
    missing = (
        sa.select(sa.literal(1))
        .select_from(need)
        .where(need_pair.not_in(sa.select(offer_pair).select_from(offer).scalar_subquery()))
    )
    return sa.or_(jobs.c.labels.is_(None), ~missing.exists())


def _queue_condition(dialect: str, shape: Shape) -> list[sa.ColumnElement[bool]]:
    queue = t.jobs.c.queue
    if shape == "any":
        return []
    if shape == "one":
        return [queue == sa.bindparam("b_queues", type_=sa.String)]
    if dialect == "postgresql":
        names = sa.bindparam("b_queues", type_=postgresql.ARRAY(sa.String))
        return [queue == sa.any_(names)]
    listed = sa.func.json_each(sa.bindparam("b_queues", type_=sa.JSON)).table_valued("value")
    # ``+queue``: SQLite would otherwise search ix_jobs_claim_queue once per
    # queue and sort every job of those queues at each claim; without an
    # index on the queue it walks ix_jobs_claim in order, as PostgreSQL does.
    unindexed = sa.literal_column("+jobs.queue", sa.String)
    return [unindexed.in_(sa.select(listed.c.value))]


def routing_conditions(dialect: str, shape: Shape) -> list[sa.ColumnElement[bool]]:
    """The claim's conditions on a candidate job: its sandbox bit is not
    refused (``b_refused``), its labels are offered (``b_labels``), and for
    ``shape`` ``one`` or ``some``, its queue is served (``b_queues``)."""
    jobs = t.jobs
    refused = jobs.c.sandbox_need.op("&")(sa.bindparam("b_refused", type_=sa.Integer)) == 0
    return [*_queue_condition(dialect, shape), refused, _labels_condition(dialect)]


def claim_args(offer: Offer) -> tuple[Any, ...]:
    """The routing parameters of a claim for ``offer``, in the order of
    :data:`ROUTING_ARGS` for its shape."""
    shape = queue_shape(offer)
    common = (refused_mask(offer.sandboxes), offer.label_map)
    if shape == "any":
        return common
    assert offer.queues is not None
    return (*common, offer.queues[0] if shape == "one" else list(offer.queues))


#: The routing parameters of each shape's claim, in order.
ROUTING_ARGS: dict[Shape, tuple[str, ...]] = {
    "any": ("b_refused", "b_labels"),
    "one": ("b_refused", "b_labels", "b_queues"),
    "some": ("b_refused", "b_labels", "b_queues"),
}
