"""User tools above the compile pipeline: they compile and simulate (analyze, evaluate, report,
demo, the mixed-precision search). The pipeline never imports them."""
