// The lanshare release version, shown by --version. Pure.

/** Version of both programs. */
export const VERSION = "0.1.0";
