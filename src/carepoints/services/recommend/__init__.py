"""Recommendations (为您推荐): each patient's suggested tasks and content from their chronic
conditions and behaviour, each with the reason in plain words, switchable off per patient."""
