;; Spins forever: ends with `fuel_exhausted` (exit 4), or `timeout` (exit 5) when the policy's
;; fuel outlasts its wall-clock budget.
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $forever (br $forever))))
