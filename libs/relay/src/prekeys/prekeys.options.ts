/** The prekey directory (prekey-directory.service.ts). */
export interface RelayPrekeyOptions {
  /**
   * One-time prekeys accepted in one upload, at most MAX_ONE_TIME_PREKEYS_PER_PUBLISH.
   * @default MAX_ONE_TIME_PREKEYS_PER_PUBLISH: 100
   */
  maxOneTimePrekeysPerUpload?: number;
  /**
   * One-time prekeys one identity may have stored.
   * @default 1_000
   */
  maxStoredOneTimePrekeys?: number;
  /**
   * When fewer one-time prekeys than this remain, the owner is told to upload more (`prekeys:low`).
   * @default LOW_PREKEY_THRESHOLD: 10
   */
  lowWaterMark?: number;
  /**
   * Largest public key or signature accepted, in bytes. The gateway stores each published prekey
   * record (signature inside) as one key, so keep it at least MAX_PREKEY_RECORD_BYTES.
   * @default MAX_PREKEY_RECORD_BYTES: 2_048
   */
  maxKeyBytes?: number;
}
