  ;; Fragment: the guest's linear memory and `cabi_realloc` (a bump allocator that never frees), in their own
  ;; core instance so that imports can be lowered with them before the main module is instantiated.
  ;; Addresses below 16384 are left to the main module's data segments.
  (core module $runtime
    (memory (export "memory") 1)
    (global $bump (mut i32) (i32.const 16384))
    (func $alloc (param $align i32) (param $size i32) (result i32)
      (local $ptr i32) (local $end i32) (local $have i32)
      (local.set $ptr
        (i32.and
          (i32.add (global.get $bump) (i32.sub (local.get $align) (i32.const 1)))
          (i32.sub (i32.const 0) (local.get $align))))
      (local.set $end (i32.add (local.get $ptr) (local.get $size)))
      (if (i32.lt_u (local.get $end) (local.get $ptr)) (then unreachable))
      (local.set $have (i32.shl (memory.size) (i32.const 16)))
      (if (i32.gt_u (local.get $end) (local.get $have))
        (then
          (if (i32.eq
                (memory.grow
                  (i32.shr_u
                    (i32.add (i32.sub (local.get $end) (local.get $have)) (i32.const 65535))
                    (i32.const 16)))
                (i32.const -1))
            (then unreachable))))
      (global.set $bump (local.get $end))
      (local.get $ptr))
    (func (export "cabi_realloc")
      (param $old i32) (param $old_size i32) (param $align i32) (param $new_size i32) (result i32)
      (local $new i32)
      (local.set $new (call $alloc (local.get $align) (local.get $new_size)))
      (if (local.get $old)
        (then
          (memory.copy
            (local.get $new)
            (local.get $old)
            (select (local.get $old_size) (local.get $new_size)
              (i32.lt_u (local.get $old_size) (local.get $new_size))))))
      (local.get $new)))
  (core instance $rt (instantiate $runtime))
  (alias core export $rt "memory" (core memory $mem))
  (alias core export $rt "cabi_realloc" (core func $realloc))
