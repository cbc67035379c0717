"""What the dashboard shows of a whole study: plotly figures stored with the study.

- :mod:`~vae_search.dashboard.study.study_figures`: the collapse map and active units against the
  objective, refreshed by the workers;
- :mod:`~vae_search.dashboard.study.rate_distortion`: the rate-distortion plane;
- :mod:`~vae_search.dashboard.study.reference_charts`: published figures as reference lines;
- :mod:`~vae_search.dashboard.study.points`: what the figures read of each trial;
- :mod:`~vae_search.dashboard.study.plot_style`: the figures' template and the ticks plotly would
  get wrong.
"""
