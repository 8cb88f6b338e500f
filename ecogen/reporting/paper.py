"""Reference numbers from the EcoGen paper that the report sets the measurements beside.

Table 3: mean test accuracy after the first and after the last HFSL round for 1…6 clusters
per edge (fixed data per cluster).
"""

from __future__ import annotations

TABLE3_FIRST: dict[int, float] = {1: 0.932, 2: 0.942, 3: 0.947, 4: 0.953, 5: 0.968, 6: 0.969}
TABLE3_END: dict[int, float] = {1: 0.955, 2: 0.958, 3: 0.964, 4: 0.967, 5: 0.976, 6: 0.977}
TABLE3_CLUSTERS = tuple(sorted(TABLE3_FIRST))
