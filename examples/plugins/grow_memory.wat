;; Grows its memory a page at a time without end: ends with `memory_limit` (exit 6) when it
;; crosses the policy's `memory_bytes`.
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $grow
      (drop (memory.grow (i32.const 1)))
      (br $grow))))
