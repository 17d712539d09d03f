// Package qbittorrent is a small client of qBittorrent's WebUI API v2, for
// btslave's master adapter.
//
// It logs in with a cookie (POST /api/v2/auth/login, sending the Referer
// and Origin the WebUI's CSRF check wants, and again whenever the session
// expires), lists torrents/info?filter=downloading, reads each torrent's
// .torrent with torrents/export, its pieces (held and being downloaded)
// with torrents/pieceStates and the btslave peers among its peers with
// sync/torrentPeers, the listen port from app/preferences, and introduces
// the helper with torrents/addPeers.
//
// WebAPI 2.11 (qBittorrent 5) renamed pause/resume to stop/start and the
// paused* states to stopped*: both are understood, and Start/Stop choose
// the endpoint from the version app/webapiVersion reports.
package qbittorrent
