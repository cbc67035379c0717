"""What a study found: trials by state, the best trials (:mod:`~vae_search.results.summary`)
and the best configurations written as runnable run configs (:mod:`~vae_search.results.export`).

Read-only over any storage.
"""
