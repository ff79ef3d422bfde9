"""Household member attribution: who, on a shared account, most likely made each purchase.

An account (an identified person) is often used by several people. Sessions of the account are
clustered into members by when, on what device and for what they browse; each conversion gets
calibrated member probabilities. See README.md in this folder.
"""
