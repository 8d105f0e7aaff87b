"""Forecasts of each source's volume and rates, and of when they will cross a threshold (issue 21).

Pure Python, no Django: fed closed hours (:class:`monitoring.anomaly.detector.HourCounts`) like the
anomaly detectors, so the live service, the backtest (``bench/forecast_eval.py``) and the tests run
the same code. Method, backtest figures and limits: ``docs/forecasting.md``.

- :mod:`.forecaster`: :func:`make_forecaster`, one per source (``observe``, ``forecast``, ``readiness``);
- :mod:`.result`: :class:`Forecast` (projections with an 80 % band, the trend, ``time_to_cross``);
- :mod:`.warning`: :class:`CrossingWarning`, the "will cross within N hours" rule logic;
- :mod:`.components`, :mod:`.trend`, :mod:`.calibration`: the model, the robust trend, the bands;
- :mod:`.config`: :class:`ForecastConfig`, the constants.
"""

from monitoring.forecast.config import ForecastConfig
from monitoring.forecast.forecaster import SourceForecaster, make_forecaster
from monitoring.forecast.result import ABOVE, BELOW, LEARNING, NO_DATA, READY, Crossing, Forecast, Projection, Trend
from monitoring.forecast.warning import CENTRAL, EARLIEST, CrossingWarning, WarningPolicy, WarningState

__all__ = [
    "ABOVE",
    "BELOW",
    "CENTRAL",
    "EARLIEST",
    "LEARNING",
    "NO_DATA",
    "READY",
    "Crossing",
    "CrossingWarning",
    "Forecast",
    "ForecastConfig",
    "Projection",
    "SourceForecaster",
    "Trend",
    "WarningPolicy",
    "WarningState",
    "make_forecaster",
]
