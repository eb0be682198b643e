"""Datasets of both papers as NumPy arrays (no torch or JAX import here).

>>> from setwise.tasks.datasets import DATASETS, load
>>> sorted(DATASETS)[:3]
['clevr', 'clevr-synthetic', 'ogbg-molbace']

``load(name, split, data_dir=None, seed=0, cache_dir=None, **kw)`` returns the split;
``DATASETS[name].returns`` says what it is. Every loader reads from a data directory
(argument, ``$SETWISE_DATA``, or ``~/setwise-data``) and caches preprocessing under a cache
directory (argument, ``$SETWISE_CACHE``, or ``~/.cache/setwise``); nothing is downloaded unless
asked. Variable-size sets come as :class:`RaggedSets` (dense + mask, or segments), graphs as
:class:`Graphs` (segments, padded static shapes for JAX, or dense nodes).

=====================  ==========================================  ==========================
name                   paper                                       module
=====================  ==========================================  ==========================
omniglot-counting      paper 1, section 5.2                        :mod:`.omniglot`
ogbg-mol*              paper 1, section 5.3                        :mod:`.ogbg`
setmnist               paper 2, section 5.1                        :mod:`.mnist`
clevr, clevr-synthetic paper 2, section 5.2                        :mod:`.clevr`, ``.clevr_render``
synthetic-molecules    paper 2, section 5.3, appendix D.2          :mod:`.synthetic`
qm9                    paper 2, section 5.4, appendix D.3          :mod:`.qm9`
=====================  ==========================================  ==========================
"""

from setwise.tasks.datasets.errors import CorruptDataError, DataError, MissingDataError
from setwise.tasks.datasets.graphs import GraphBatch, Graphs, pad_graph_batch
from setwise.tasks.datasets.registry import DATASETS, DatasetInfo, availability, get, load
from setwise.tasks.datasets.sets import (
    DenseBatch,
    RaggedSets,
    SegmentBatch,
    batch_indices,
    pad_segments,
)

__all__ = [
    "DATASETS",
    "CorruptDataError",
    "DataError",
    "DatasetInfo",
    "DenseBatch",
    "GraphBatch",
    "Graphs",
    "MissingDataError",
    "RaggedSets",
    "SegmentBatch",
    "availability",
    "batch_indices",
    "get",
    "load",
    "pad_graph_batch",
    "pad_segments",
]
