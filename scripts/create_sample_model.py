#!/usr/bin/env python3
"""Train a real model on the synthetic demo world and write it to MODEL_PATH (the integration
guide's `python scripts/create_sample_model.py`, run from the repository root).

Same as `recommender create-sample-model`; never trained on random noise.
"""

from interaction_recommender.cli import app

if __name__ == "__main__":
    app(["create-sample-model"])
