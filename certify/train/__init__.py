"""train — gradient descent and projected GD, with every iterate checked.

Owns: the vectorized RNN (:mod:`.rnn`: forward, loss and gradient, JVP, and
:func:`~certify.train.rnn.check_grads`, the gradient checker users may call),
the executor that runs GD / PGD on an array backend (NumPy; CuPy or torch
optional) and checks the certified drift inequality at each iterate
(:mod:`.executor`), the projection onto Ω_ρ (:mod:`.projection`) and the
comparators (:mod:`.comparator`).  Its numbers are *observed* floats; the
certified constants it checks against come in as arguments.

May import: :mod:`symbolic` (the generated numeric code), NumPy and the
optional backends.  Nothing from :mod:`certify.trusted`, :mod:`certify.bounds`,
:mod:`certify.cases` or :mod:`certify.output`.
"""
