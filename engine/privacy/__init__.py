"""Privacy: encryption at rest with per-person keys, erasure, suppression, export, retention.

One job per module: `crypto` seals and opens blobs, `keys` holds the per-person keys and the
blind-index secret, `legacy` encrypts a state written before encryption existed, `requests`
queues erasures, `plan`/`erase` carry one out step by step, `audit` records what was erased,
`suppression` drops events of erased persons, `export` gathers what is held about a person,
`retention` deletes old raw events.
"""
