"""Prompt shields: a local detector of jailbreaks in prompts and of indirect attacks (instructions
planted for the model) in documents and tool results, trained in this repository on a dataset
the team wrote. See docs/safety.md, "Prompt shields"."""
