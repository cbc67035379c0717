"""What the dashboard shows of one trial: its note and its pictures.

- :mod:`~vae_search.dashboard.trial.publish`: uploads a trial's pictures and saves its note;
- :mod:`~vae_search.dashboard.trial.notes`: the note (how the trial ended, in words);
- :mod:`~vae_search.dashboard.trial.trial_pictures`: training curves, KL per dimension,
  reconstructions, prior samples, latent traversals;
- :mod:`~vae_search.dashboard.trial.text_pictures`: the text trials' pictures;
- :mod:`~vae_search.dashboard.trial.plots`, :mod:`~vae_search.dashboard.trial.panels`: matplotlib
  style, figures and chart panels; :mod:`~vae_search.dashboard.trial.grids`: captioned image grids.
"""
