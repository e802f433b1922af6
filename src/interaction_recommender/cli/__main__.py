"""`python -m interaction_recommender.cli`: the same as the `recommender` command."""

from interaction_recommender.cli import main

main()
