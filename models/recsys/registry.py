"""Every recommendation family the pipeline fits through the contract, by name: one line per family."""
from __future__ import annotations

from models.recsys.baselines import ItemKNN, Popularity, RecentPopularity
from models.recsys.bspm import BSPM, BSPMFactors
from models.recsys.contract import Family
from models.recsys.graph_filter import GFCF, GFCFFactors
from models.recsys.sgfcf import SGFCF, SGFCFFactors

FAMILIES: dict[str, Family] = {family.name: family for family in (
    Popularity(), RecentPopularity(), ItemKNN(), GFCF(), GFCFFactors(), BSPM(), BSPMFactors(), SGFCF(),
    SGFCFFactors())}
