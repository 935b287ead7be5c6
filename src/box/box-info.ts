// <home>/box.json: written by a running seeding box (box-run.ts), read by `kfetch status` to find it and its /status.

/** The box's description in <home>/box.json. */
export interface BoxInfo {
  pid: number;
  url: string;
  watch: string;
  data: string;
  startedAt: string;
  /** Where the control API answers (`<url>/api/v1/`, the page at `<url>/ui/`). */
  api?: string;
}

export const BOX_INFO_FILE = 'box.json';
