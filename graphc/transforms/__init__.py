"""Graph -> Graph: differentiation, stabilisation, simplification, and the pipeline that runs them."""
